package ingest_test

import (
	"net/http"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

// TestHandler_MaxEvents_UnicodeSpaceBeforeArray: bytes.TrimSpace in
// parseEvents strips Unicode spaces (\v, \f, U+0085, U+00A0, U+3000…) that
// scanBody does not skip, so the scan sees a non-array body of 1 event while
// the decoder reads the whole array: MaxEvents is bypassed (up to
// MaxInFlight events published by one request, and every event of a 1 MiB
// body decoded first).
func TestHandler_MaxEvents_UnicodeSpaceBeforeArray(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"\f", "\v", "\u00a0", "\u0085", "\u3000", " \f\n"} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{connected: true}
			h := newHandler(t, ingest.Config{Publisher: pub, MaxEvents: 3})
			resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", prefix+events(50))
			n := 0
			for _, b := range pub.published() {
				n += len(b)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("prefix %q + 50 events with MaxEvents 3: status %d (%d ids answered), %d events published; want 413 (or 400), none published",
					prefix, resp.StatusCode, len(strs(got["ids"])), n)
			}
		})
	}
}

// TestHandler_MaxEvents_UnicodeSpace_Defaults: with the defaults (MaxEvents
// 500, MaxInFlight 10,000), one request of "\f" and 10,000 events publishes
// all of them and answers 10,000 ids.
func TestHandler_MaxEvents_UnicodeSpace_Defaults(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	h := newHandler(t, ingest.Config{Publisher: pub})
	resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", "\f"+events(ingest.DefaultMaxInFlight))
	n := 0
	for _, b := range pub.published() {
		n += len(b)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest || n != 0 {
		t.Errorf("\\f + %d events: status %d, %d ids answered, %d published; want 413 (or 400) and none published",
			ingest.DefaultMaxInFlight, resp.StatusCode, len(strs(got["ids"])), n)
	}
}
