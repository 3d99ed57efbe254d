package main

import (
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/webhook"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestWebhookWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		unsigned bool
		clear    bool
	}{
		{"log handler", map[string]string{"WEBHOOK_URL": "http://example.com/"}, false, false},
		{"signed https", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "https://example.com/", "WEBHOOK_SECRET": testWebhookSecret}, false, false},
		{"unsigned https", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "https://example.com/"}, true, false},
		{"signed http remote", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "http://u:pw@example.com/?token=t", "WEBHOOK_SECRET": testWebhookSecret}, false, true},
		{"unsigned http remote", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "http://203.0.113.9:8080/"}, true, true},
		{"signed http loopback", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "http://127.0.0.1:8081/", "WEBHOOK_SECRET": testWebhookSecret}, false, false},
		{"signed http fly private", map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "http://receiver.flycast/", "WEBHOOK_SECRET": testWebhookSecret}, false, false},
	}
	for _, tt := range tests {
		cfg, err := config.LoadWorker(tt.env)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := strings.Join(webhookWarnings(cfg), "\n")
		if strings.Contains(got, "unsigned") != tt.unsigned || strings.Contains(got, "clear text") != tt.clear {
			t.Errorf("%s: warnings %q; want unsigned %v, clear text %v", tt.name, got, tt.unsigned, tt.clear)
		}
		if strings.Contains(got, "pw") || strings.Contains(got, "token") || strings.Contains(got, "MfKQ") {
			t.Errorf("%s: a warning shows a secret: %q", tt.name, got)
		}
	}
}

// TestWorker_WebhookWarnsAtStart: the WARN lines are in the worker's log,
// with the URL redacted.
func TestWorker_WebhookWarnsAtStart(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL=http://bot:pw123@receiver.example:8080/events?token=t0ken"), "run")
	p.waitLog(`"level":"WARN","msg":"webhook requests are unsigned`, 30*time.Second)
	p.waitLog(`"level":"WARN","msg":"webhook requests cross the network in clear text`, 30*time.Second)
	p.waitConsuming()
	p.stop(30 * time.Second)
	if log := p.Stderr.String(); strings.Contains(log, "pw123") || strings.Contains(log, "t0ken") {
		t.Errorf("the log shows the URL's password or token:\n%s", log)
	}
}

// TestWorker_WebhookSigned: with WEBHOOK_SECRET (two, a rotation), every
// attempt the receiver gets verifies, with its own timestamp, and the
// webhook-id is the same across the retry. The receiver answers 500 to the
// first attempt.
func TestWorker_WebhookSigned(t *testing.T) {
	t.Parallel()
	const oldSecret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIz"
	a := newApp(t, 100*time.Millisecond)
	h := newHook(t)
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+h.srv.URL+"/events",
		"WEBHOOK_SECRET="+testWebhookSecret+" "+oldSecret, "RETRY_DELAYS=100ms"), "run")
	p.waitConsuming()
	if strings.Contains(p.Stderr.String(), "unsigned") {
		t.Errorf("a signed worker warns that it is unsigned:\n%s", p.Stderr.String())
	}
	publish(t, a.exchange, message{id: "signed-1", typ: cardAdded, aggregate: "poison-once", body: `{ "card": 1 }`})
	var reqs []hookRequest
	p.Poll(t, 30*time.Second, "two attempts", func() bool {
		reqs = h.byID()["signed-1"]
		return len(reqs) >= 2
	})
	for _, old := range []bool{false, true} {
		secret := testWebhookSecret
		if old {
			secret = oldSecret
		}
		keys, err := webhook.ParseSecrets(secret)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range reqs[:2] {
			if err := webhook.Verify(keys, r.header, []byte(r.body), time.Now()); err != nil {
				t.Errorf("attempt %d with secret old=%v: %v", i+1, old, err)
			}
		}
	}
	if id0, id1 := reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"); id0 != "test-publisher:signed-1" || id1 != id0 {
		t.Errorf("webhook-id %q then %q, want test-publisher:signed-1 twice", id0, id1)
	}
	p.stop(30 * time.Second)
}
