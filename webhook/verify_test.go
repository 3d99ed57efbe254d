package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signed is a request as a receiver gets it.
type signed struct {
	header http.Header
	body   []byte
}

func newSigned(secrets []Secret, id string, ts time.Time, body string) signed {
	h := http.Header{}
	signHeader(h, secrets, id, ts, []byte(body))
	return signed{h, []byte(body)}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	oldKey, newKey, otherKey := testSecret('o', 32), testSecret('n', 32), testSecret('x', 32)
	sent := time.Unix(1700000000, 0)
	const id, body = "catalog:0190c0de-0000-7000-8000-000000000001", `{"z": 1,  "a":[1, 2]}`
	tests := []struct {
		name   string
		signer string // secrets the sender signs with
		keys   string // secrets the receiver verifies with
		edit   func(*signed)
		now    time.Time
		want   error // nil: verifies
	}{
		{name: "round trip", signer: newKey, keys: newKey, now: sent},
		{name: "4m59s late", signer: newKey, keys: newKey, now: sent.Add(4*time.Minute + 59*time.Second)},
		{name: "clock 5m behind", signer: newKey, keys: newKey, now: sent.Add(-5 * time.Minute)},
		{name: "body tampered", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.body = []byte(strings.Replace(string(s.body), "1", "2", 1)) }, want: ErrBadSignature},
		{name: "body reformatted", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.body = []byte(`{"z":1,"a":[1,2]}`) }, want: ErrBadSignature},
		{name: "id changed", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Set("webhook-id", "catalog:other") }, want: ErrBadSignature},
		{name: "timestamp moved to now", signer: newKey, keys: newKey, now: sent.Add(time.Hour),
			edit: func(s *signed) { s.header.Set("webhook-timestamp", strconv.FormatInt(sent.Add(time.Hour).Unix(), 10)) }, want: ErrBadSignature},
		{name: "timestamp with leading zero", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Set("webhook-timestamp", "0"+s.header.Get("webhook-timestamp")) }, want: ErrBadSignature},
		{name: "replayed 6m later", signer: newKey, keys: newKey, now: sent.Add(6 * time.Minute), want: ErrTimestamp},
		{name: "from the future", signer: newKey, keys: newKey, now: sent.Add(-5*time.Minute - time.Second), want: ErrTimestamp},
		{name: "timestamp not a number (changed after signing)", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Set("webhook-timestamp", "1700000000.5") }, want: ErrBadSignature},
		{name: "negative timestamp (changed after signing)", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Set("webhook-timestamp", "-1") }, want: ErrBadSignature},
		{name: "wrong secret", signer: otherKey, keys: newKey, now: sent, want: ErrBadSignature},
		{name: "rotation: sender has both, receiver the old", signer: newKey + " " + oldKey, keys: oldKey, now: sent},
		{name: "rotation: sender has both, receiver the new", signer: newKey + " " + oldKey, keys: newKey, now: sent},
		{name: "rotation: sender has the new, receiver both", signer: newKey, keys: oldKey + " " + newKey, now: sent},
		{name: "other versions are skipped", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) {
				s.header.Set("webhook-signature", "v1a,AAAA v2,"+strings.TrimPrefix(s.header.Get("webhook-signature"), "v1,")+" garbage "+s.header.Get("webhook-signature"))
			}},
		{name: "signature as v2 only", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) {
				s.header.Set("webhook-signature", "v2,"+strings.TrimPrefix(s.header.Get("webhook-signature"), "v1,"))
			}, want: ErrBadSignature},
		{name: "signature split over two header lines", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) {
				sig := s.header.Get("webhook-signature")
				s.header["Webhook-Signature"] = []string{"v1,AAAA", sig}
			}},
		{name: "no signature", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Del("webhook-signature") }, want: ErrNoSignature},
		{name: "blank signature", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Set("webhook-signature", " ") }, want: ErrNoSignature},
		{name: "no id", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Del("webhook-id") }, want: ErrNoSignature},
		{name: "no timestamp", signer: newKey, keys: newKey, now: sent,
			edit: func(s *signed) { s.header.Del("webhook-timestamp") }, want: ErrNoSignature},
		{name: "no secret to verify with", signer: newKey, keys: "", now: sent, want: ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSigned(mustSecrets(t, tt.signer), id, sent, body)
			if tt.edit != nil {
				tt.edit(&s)
			}
			err := Verify(mustSecrets(t, tt.keys), s.header, s.body, tt.now)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifier_Tolerance(t *testing.T) {
	t.Parallel()
	key := mustSecrets(t, testSecret('t', 32))
	sent := time.Unix(1700000000, 0)
	s := newSigned(key, "id", sent, "{}")
	v := Verifier{Secrets: key, Tolerance: 30 * time.Second}
	if err := v.Verify(s.header, s.body, sent.Add(30*time.Second)); err != nil {
		t.Errorf("at the tolerance: %v", err)
	}
	err := v.Verify(s.header, s.body, sent.Add(31*time.Second))
	if !errors.Is(err, ErrTimestamp) || !strings.Contains(err.Error(), "31s ago") {
		t.Errorf("past the tolerance: %v, want ErrTimestamp saying how late", err)
	}
}

// A forged request with a stale timestamp is a bad signature, not a late
// one: ErrTimestamp is kept for genuine requests, so that it can point at
// clocks.
func TestVerify_SignatureBeforeTimestamp(t *testing.T) {
	t.Parallel()
	key := mustSecrets(t, testSecret('t', 32))
	s := newSigned(mustSecrets(t, testSecret('f', 32)), "id", time.Unix(1, 0), "{}")
	if err := Verify(key, s.header, s.body, time.Unix(1700000000, 0)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
}
