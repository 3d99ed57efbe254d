package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

const refusedPassword = "Zq8-worker-refused"

// TestDLQ_RefusedSaysWhy: `worker dlq` with a wrong password or an unknown
// vhost fails at once with the cause, without the password.
func TestDLQ_RefusedSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url, says string }{
		{"wrong password", brokertest.URLWith(t, refusedPassword, ""), "amqp: access refused"},
		{"unknown vhost", brokertest.URLWith(t, "", "no-such-vhost"), "amqp: vhost not found or not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			r := dlqRun(t, a.env(t, "AMQP_URL="+tt.url), "list")
			r.expect(t, 1)
			if !strings.Contains(r.stderr, tt.says) || strings.Contains(r.stderr, refusedPassword) {
				t.Errorf("stderr does not say %q, or shows the password:\n%s", tt.says, r.stderr)
			}
		})
	}
}

// TestWorker_RefusedSaysWhyAndRetries: `worker run` with a wrong password
// keeps retrying, logs why, and /readyz's reason names the refusal.
func TestWorker_RefusedSaysWhyAndRetries(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "AMQP_URL="+brokertest.URLWith(t, refusedPassword, "")))
	base := "http://" + adminAddr(t, p)
	var body string
	brokertest.Eventually(t, 30*time.Second, "/readyz to name the refusal", func() bool {
		var code int
		code, body = httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "amqp: access refused")
	})
	if !strings.Contains(body, "not consuming: connecting to the broker: ") || strings.Contains(body, refusedPassword) {
		t.Errorf("/readyz body %s", body)
	}
	p.waitLog(`"msg":"cannot consume; retrying"`, 30*time.Second)
	if code, exited := p.Wait(10 * time.Millisecond); exited {
		t.Fatalf("worker exited (%d) on a refused connection; it should keep retrying", code)
	}
	if strings.Contains(p.Stderr.String(), refusedPassword) {
		t.Errorf("stderr shows the password")
	}
	p.stop(30 * time.Second)
}
