package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// serving is a worker's "serving /metrics…" log line.
type serving struct {
	Level, Addr, Instance string
}

func servingLine(t *testing.T, p *proc) serving {
	t.Helper()
	p.waitLog(`"msg":"serving /metrics, /healthz and /readyz"`, 30*time.Second)
	for _, l := range p.Stderr.Lines() {
		var s struct {
			serving
			Msg string
		}
		if json.Unmarshal([]byte(l), &s) == nil && strings.HasPrefix(s.Msg, "serving /metrics") {
			return s.serving
		}
	}
	t.Fatal("no serving line")
	return serving{}
}

// TestWorker_TwoOnOneHostWithTheDefaultMetricsAddr is issue 12's findings 8
// and 11: with METRICS_ADDR unset, two workers of one app start on a host
// where :9090 is taken (here by a publisher-like process answering "ready"),
// each on a free port it logs at WARN; and `worker health` asks the app's
// workers, never whatever answers on :9090.
func TestWorker_TwoOnOneHostWithTheDefaultMetricsAddr(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	run := t.TempDir() // the runtime directory the workers and health share
	proctest.Hold(t, config.DefaultMetricsAddr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ready","role":"publisher","app":"` + a.name + `","instance":"0123456789abcdef"}`))
	}))
	health := func(extra ...string) (code int, stdout, stderr string) {
		env := map[string]string{"APP_NAME": a.name, "XDG_RUNTIME_DIR": run, "METRICS_ADDR": unset}
		for _, kv := range extra {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		p := startWorker(t, env, "health")
		code = p.wait(30 * time.Second)
		return code, p.Stdout.String(), p.Stderr.String()
	}

	// No worker runs: the publisher on :9090 must not pass for one.
	if code, out, errs := health(); code != exitFatal || !strings.Contains(errs, "answers as the publisher of app "+a.name) {
		t.Errorf("worker health with only a publisher on :9090: exit %d, stdout %q, stderr %q; want %d naming the publisher", code, out, errs, exitFatal)
	}

	env := a.env(t, "METRICS_ADDR="+unset, "XDG_RUNTIME_DIR="+run)
	w1, w2 := startWorker(t, env), startWorker(t, env)
	s1, s2 := servingLine(t, w1), servingLine(t, w2)
	for _, s := range []serving{s1, s2} {
		if strings.HasSuffix(s.Addr, ":9090") || s.Instance == "" {
			t.Errorf("worker serves on %s, instance %q; want a free port and an instance id", s.Addr, s.Instance)
		}
	}
	if s1.Addr == s2.Addr || s1.Instance == s2.Instance {
		t.Errorf("two workers share %s / %s", s1.Addr, s1.Instance)
	}
	for _, p := range []*proc{w1, w2} {
		p.waitLog(`"level":"WARN","msg":"the default METRICS_ADDR is taken`, 10*time.Second)
		p.waitConsuming()
	}
	// Each answers as itself.
	for _, s := range []serving{s1, s2} {
		brokertest.Eventually(t, 30*time.Second, s.Addr+" /readyz 200", func() bool {
			code, body := httpGet(t, "http://"+s.Addr+"/readyz")
			var st struct{ Status, Role, App, Instance string }
			_ = json.Unmarshal([]byte(body), &st)
			if code == http.StatusOK && (st.Role != "worker" || st.App != a.name || st.Instance != s.Instance) {
				t.Fatalf("%s /readyz = %s, want worker %s instance %s", s.Addr, body, a.name, s.Instance)
			}
			return code == http.StatusOK
		})
	}

	// health asks both, through their records.
	code, out, errs := health()
	if code != exitOK || !strings.Contains(out, s1.Instance) || !strings.Contains(out, s2.Instance) {
		t.Errorf("worker health with two workers: exit %d, stdout %q, stderr %q; want 0 naming both instances", code, out, errs)
	}
	// An explicit METRICS_ADDR is asked, and must be this app's worker.
	if code, out, errs := health("METRICS_ADDR=" + s1.Addr); code != exitOK || !strings.Contains(out, s1.Instance) {
		t.Errorf("worker health METRICS_ADDR=%s: exit %d, %q %q; want 0", s1.Addr, code, out, errs)
	}
	if code, _, errs := health("METRICS_ADDR="+s1.Addr, "APP_NAME=other"); code != exitFatal || !strings.Contains(errs, "answers as the worker of app "+a.name) {
		t.Errorf("worker health of app other on %s: exit %d, %q; want %d naming app %s", s1.Addr, code, errs, exitFatal, a.name)
	}
	if code, _, errs := health("METRICS_ADDR=" + config.DefaultMetricsAddr); code != exitFatal || !strings.Contains(errs, "answers as the publisher") {
		t.Errorf("worker health METRICS_ADDR=:9090 (the publisher): exit %d, %q; want %d", code, errs, exitFatal)
	}

	// A stopped worker's record goes with it; a killed one's is ignored.
	w2.stop(30 * time.Second)
	if code, out, errs := health(); code != exitOK || strings.Contains(out, s2.Instance) || !strings.Contains(out, s1.Instance) {
		t.Errorf("worker health after one stopped: exit %d, %q %q; want 0 naming only %s", code, out, errs, s1.Instance)
	}
	w1.Kill(t)
	if code, out, errs := health(); code != exitFatal || !strings.Contains(errs, "no record of a running worker") {
		t.Errorf("worker health after the last was killed: exit %d, %q %q; want %d", code, out, errs, exitFatal)
	}
}
