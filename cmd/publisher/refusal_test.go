package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

const refusedPassword = "Zq8-refused-secret"

// TestPublish_RefusedFailsFast: a wrong password or an unknown vhost fails
// `publish` at once with the cause, not after PUBLISH_TIMEOUT with "context
// deadline exceeded", and never shows the password.
func TestPublish_RefusedFailsFast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, says string
	}{
		{"wrong password", brokertest.URLWith(t, refusedPassword, ""), "amqp: access refused"},
		{"unknown vhost", brokertest.URLWith(t, "", "no-such-vhost"), "amqp: vhost not found or not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := []string{"AMQP_URL=" + tt.url, "PUBLISH_TIMEOUT=60s", "EXCHANGE=" + brokertest.Name(t)}
			start := time.Now()
			stdout, stderr, code := runBin(t, env, strings.NewReader(ndjson(3)), "publish")
			// RabbitMQ answers a failed login after a pause of its own (~3s).
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("failed after %v: it waited for PUBLISH_TIMEOUT", took)
			}
			if stdout != "published=0 failed=3\n" || code != 1 {
				t.Errorf("stdout %q exit %d, want published=0 failed=3 exit 1", stdout, code)
			}
			if !strings.Contains(stderr, tt.says) || strings.Contains(stderr, "deadline exceeded") {
				t.Errorf("stderr does not say %q:\n%s", tt.says, stderr)
			}
			if strings.Contains(stderr, refusedPassword) {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}

// TestServe_RefusedSaysWhyAndRetries: `serve` with a wrong password keeps
// running and retrying, and /readyz's reason names the refusal.
func TestServe_RefusedSaysWhyAndRetries(t *testing.T) {
	t.Parallel()
	p, base := startServe(t, []string{"AMQP_URL=" + brokertest.URLWith(t, refusedPassword, ""),
		"EXCHANGE=" + brokertest.Name(t), "PUBLISHER_AUTH=none", "LOG_LEVEL=debug"})
	var reason string
	p.Poll(t, time.Minute, "/readyz to name the refusal", func() bool {
		resp, got := request(t, "GET", base+"/readyz", "")
		reason = fmt.Sprint(got["reason"])
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(reason, amqp.ErrAccessRefused.Error())
	})
	if !strings.HasPrefix(reason, "broker not connected: ") || strings.Contains(reason, refusedPassword) {
		t.Errorf("/readyz reason %q", reason)
	}
	p.Poll(t, time.Minute, "a second failed attempt", func() bool {
		return len(p.logLines("broker connection failed; retrying")) >= 2
	})
	if code, exited := p.Wait(10 * time.Millisecond); exited {
		t.Fatalf("serve exited (%d) on a refused connection; it should keep retrying", code)
	}
	if strings.Contains(p.stderr.String(), refusedPassword) {
		t.Errorf("stderr shows the password")
	}
}
