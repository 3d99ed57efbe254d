package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// TestServe_DefaultMetricsAddrTaken is issue 12's findings 8 and 11 for the
// publisher: with METRICS_ADDR unset, `publisher serve` starts although
// :9090 is taken (here by a worker-like process answering "ready"), serving
// on a free port it logs at WARN, and `publisher health` asks it, not :9090.
func TestServe_DefaultMetricsAddrTaken(t *testing.T) {
	t.Parallel()
	exchange, _ := testExchange(t)
	run := t.TempDir() // the runtime directory serve and health share
	proctest.Hold(t, config.DefaultMetricsAddr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ready","role":"worker","app":"publisher-test","instance":"0123456789abcdef"}`))
	}))
	health := func() (int, string, string) {
		out, errs, code := runBin(t, []string{unsetMetricsAddr, "APP_NAME=publisher-test", "XDG_RUNTIME_DIR=" + run}, nil, "health")
		return code, out, errs
	}
	if code, out, errs := health(); code != 1 || !strings.Contains(errs, "answers as the worker of app publisher-test") {
		t.Errorf("publisher health with only a worker on :9090: exit %d, %q %q; want 1 naming the worker", code, out, errs)
	}

	p, base := startServe(t, brokerEnv(t, exchange, unsetMetricsAddr, "XDG_RUNTIME_DIR="+run))
	var addr, instance string
	p.Poll(t, time.Minute, "the fallback warning", func() bool {
		for _, rec := range p.stderr.Lines() {
			if strings.Contains(rec, `"level":"WARN"`) && strings.Contains(rec, "the default METRICS_ADDR is taken") {
				return true
			}
		}
		return false
	})
	for _, rec := range p.logLines("serving /metrics, /healthz and /readyz") {
		addr, _ = rec["addr"].(string)
		instance, _ = rec["instance"].(string)
	}
	if addr == "" || strings.HasSuffix(addr, ":9090") || instance == "" {
		t.Fatalf("serving on %q, instance %q; want a free port and an instance id", addr, instance)
	}
	p.Poll(t, time.Minute, "/readyz 200", func() bool {
		resp, _ := request(t, "GET", "http://"+addr+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	// PUBLISHER_ADDR's /readyz names the process too.
	if _, got := request(t, "GET", base+"/readyz", ""); got["role"] != "publisher" || got["instance"] != instance || got["status"] != "ready" {
		t.Errorf("PUBLISHER_ADDR /readyz = %v, want status ready, role publisher, instance %s", got, instance)
	}
	if code, out, errs := health(); code != 0 || !strings.Contains(out, instance) {
		t.Errorf("publisher health: exit %d, %q %q; want 0 naming instance %s", code, out, errs, instance)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("serve exit %d after SIGTERM, want 0", code)
	}
}
