package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// TestRelay_HealthAsksTheRelay: compose's relay service has the
// healthcheck `publisher health`. In a relay's container no serve runs, so
// it asks the relay: by its record (METRICS_ADDR unset) or on METRICS_ADDR,
// exit 0 while the relay is ready, and 1, saying why, when the publishing
// relay has no broker.
func TestRelay_HealthAsksTheRelay(t *testing.T) {
	t.Parallel()
	exchange := brokertest.Name(t)
	brokertest.Cleanup(t, []string{amqp.UnroutedQueue(exchange)}, []string{exchange})
	start := func(amqpURL string, metrics string) (*proc, string, []string) {
		db := pgtest.Database(t)
		run := t.TempDir() // the runtime directory relay and health share, as in a container
		env := []string{"AMQP_URL=" + amqpURL, "EXCHANGE=" + exchange, "APP_NAME=library", "DATABASE_URL=" + db,
			"XDG_RUNTIME_DIR=" + run, metrics}
		if _, stderr, code := runBin(t, env, nil, "relay", "migrate"); code != 0 {
			t.Fatalf("relay migrate: exit %d: %s", code, stderr)
		}
		p := startBin(t, env, nil, "relay")
		var addr string
		p.Poll(t, time.Minute, "the admin address in the log", func() bool {
			for _, rec := range p.logLines("serving /metrics, /healthz and /readyz") {
				addr, _ = rec["addr"].(string)
			}
			return addr != ""
		})
		return p, addr, env
	}
	health := func(env []string) (int, string, string) {
		out, errs, code := runBin(t, env, nil, "health")
		return code, out, errs
	}

	p, addr, env := start(brokertest.URL(t), unsetMetricsAddr)
	var code int
	var out, errs string
	p.Poll(t, time.Minute, "publisher health exit 0", func() bool {
		code, out, errs = health(env)
		return code == 0
	})
	if !strings.Contains(out, "ready: relay of app library") {
		t.Errorf("publisher health by the record: %q %q; want a line naming the relay of app library", out, errs)
	}
	// METRICS_ADDR set: that address is asked, and the relay answers.
	if code, out, errs := health(append(env, "METRICS_ADDR="+addr)); code != 0 || !strings.Contains(out, "relay of app library") {
		t.Errorf("publisher health with METRICS_ADDR=%s: exit %d, %q %q; want 0 naming the relay", addr, code, out, errs)
	}
	// Another app's health is not answered by this relay.
	if code, _, errs := health(append(env, "METRICS_ADDR="+addr, "APP_NAME=billing")); code != 1 || !strings.Contains(errs, "answers as the relay of app library") {
		t.Errorf("publisher health of app billing on the relay of library: exit %d, %q; want 1 naming what answered", code, errs)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("relay exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}

	// The publishing relay without a broker is not ready, and health says why.
	p, addr, env = start("amqp://guest:guest@127.0.0.1:1/", "METRICS_ADDR=127.0.0.1:0") // nothing listens on port 1
	p.Poll(t, time.Minute, "publisher health exit 1, not ready", func() bool {
		code, out, errs = health(append(env, "METRICS_ADDR="+addr))
		return code == 1 && strings.Contains(errs, "not ready") && strings.Contains(errs, "broker not connected")
	})
}
