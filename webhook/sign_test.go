package webhook

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// TestSign_SpecVector is the Standard Webhooks reference libraries' test
// vector: another implementation's answer for the same input.
func TestSign_SpecVector(t *testing.T) {
	t.Parallel()
	secrets := mustSecrets(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	got := Sign(secrets, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestSign_OneSignaturePerSecret(t *testing.T) {
	t.Parallel()
	a, b := mustSecrets(t, testSecret('a', 32)), mustSecrets(t, testSecret('b', 32))
	ts, body := time.Unix(1700000000, 0), []byte(`{}`)
	both := Sign(append(a, b...), "id", ts, body)
	if want := Sign(a, "id", ts, body) + " " + Sign(b, "id", ts, body); both != want {
		t.Fatalf("Sign with two secrets = %q, want %q", both, want)
	}
	if Sign(nil, "id", ts, body) != "" {
		t.Error("no secret must give no signature")
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct{ source, id, want string }{
		{"catalog", "0190c0de-0000-7000-8000-000000000001", "catalog:0190c0de-0000-7000-8000-000000000001"},
		{"", "0190c0de-0000-7000-8000-000000000001", "0190c0de-0000-7000-8000-000000000001"},
		{"billing-service", "order_42~x", "billing-service:order_42~x"},
		// "." separates the signed parts: never in an id.
		{"a.b", "c.1700000000", "a%2Eb:c%2E1700000000"},
		// ":" only as the separator, so the pair is read back one way.
		{"a", "b:c", "a:b%3Ac"},
		{"a:b", "c", "a%3Ab:c"},
		{"", "a:b", "a%3Ab"},
		{"", "%41", "%2541"},
		// What a header cannot carry, and what is not ASCII.
		{"app\r\n", "id\x00é", "app%0D%0A:id%00%C3%A9"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := MessageID(event.Event{Source: tt.source, ID: tt.id})
		if got != tt.want {
			t.Errorf("MessageID(%q, %q) = %q, want %q", tt.source, tt.id, got, tt.want)
		}
		if seen[got] {
			t.Errorf("MessageID %q stands for two events", got)
		}
		seen[got] = true
		if !validHeaderValue(got) || strings.Contains(got, ".") {
			t.Errorf("MessageID %q is not a header value without '.'", got)
		}
	}
}

// signedSetup is setup with a Handler that signs with secrets.
func signedSetup(t *testing.T, secrets string, respond http.HandlerFunc) *bundle {
	t.Helper()
	b := setup(t, respond)
	h, err := New(Config{URL: b.srv.URL + "/hook", Secrets: mustSecrets(t, secrets)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.client.CloseIdleConnections)
	b.handler = h
	return b
}

// TestHandle_SignsEachAttempt: every request is signed over the bytes that
// arrived, with the time of that attempt, and keeps the X-Event-* headers.
func TestHandle_SignsEachAttempt(t *testing.T) {
	t.Parallel()
	secret := testSecret('k', 32)
	b := signedSetup(t, secret, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	clock := time.Unix(1700000000, 0)
	b.handler.now = func() time.Time { return clock }
	ev := testEvent()
	for attempt := 1; attempt <= 2; attempt++ {
		ev.Attempt = attempt
		if err := b.handler.Handle(context.Background(), ev); err == nil {
			t.Fatal("want an error for 500")
		}
		clock = clock.Add(10 * time.Second)
	}
	reqs := b.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		wantTS := strconv.FormatInt(1700000000+10*int64(i), 10)
		if got := r.header.Get("Webhook-Timestamp"); got != wantTS {
			t.Errorf("attempt %d: webhook-timestamp %s, want %s (the attempt's own time)", i+1, got, wantTS)
		}
		if got, want := r.header.Get("webhook-id"), "catalog:"+ev.ID; got != want {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, got, want)
		}
		if r.header.Get(HeaderEventID) != ev.ID || r.header.Get(HeaderAttempt) != strconv.Itoa(i+1) {
			t.Errorf("attempt %d: X-Event-* headers lost: %v", i+1, r.header)
		}
		now := time.Unix(1700000000+10*int64(i), 0)
		if err := Verify(mustSecrets(t, secret), r.header, r.body, now); err != nil {
			t.Errorf("attempt %d: the request as received does not verify: %v", i+1, err)
		}
	}
	if reqs[0].header.Get("webhook-signature") == reqs[1].header.Get("webhook-signature") {
		t.Error("two attempts carry the same signature: the timestamp is not the attempt's")
	}
}

func TestHandle_UnsignedWithoutSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if b.handler.Signed() {
		t.Fatal("a handler without secrets says it signs")
	}
	if err := b.handler.Handle(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	for name := range b.requests()[0].header {
		if strings.HasPrefix(strings.ToLower(name), "webhook-") {
			t.Errorf("unsigned request carries %s", name)
		}
	}
}
