package ingest_test

import (
	"net/http"
	"strings"
	"testing"
)

// Control characters in an id or aggregate id would reach logs, HTTP
// headers and terminals: both ingest paths refuse them, naming the field
// (`publisher publish`: cmd/publisher's TestPublish_RejectsControlCharacters).

func TestHandler_Events_RejectsControlCharacters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantError string
		wantInvalid           bool
	}{
		{name: "id with ESC and a forged line", body: `{"type":"A","id":"x\u001b[2J\n  reason:      FAKE-REASON\n"}`,
			wantError: `invalid event: invalid event id: "x\x1b[2J\n  reason:      FAKE-REASON\n" contains control character U+001B`},
		{name: "id with a C1 control", body: `{"type":"A","id":"x\u009by"}`, wantError: "invalid event id"},
		{name: "aggregate id with CR LF", body: `{"type":"A","aggregate_id":"lib\r\nX-Injected: 1"}`,
			wantError: `invalid event: invalid aggregate_id: "lib\r\nX-Injected: 1" contains control character U+000D`},
		{name: "type with DEL", body: `{"type":"A\u007f"}`, wantError: "invalid event type"},
		{name: "in an array", body: `[{"type":"A"},{"type":"A","aggregate_id":"a\u0000"}]`,
			wantError: "invalid event at index 1: invalid aggregate_id", wantInvalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t, nil)
			resp, got := serveRequest(t, b.handler, http.MethodPost, "/events", "application/json", tt.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; answer %v", resp.StatusCode, got)
			}
			if msg, _ := got["error"].(string); !strings.Contains(msg, tt.wantError) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantError)
			}
			if _, ok := got["invalid"]; ok != tt.wantInvalid {
				t.Errorf("invalid list present %v, want %v: %v", ok, tt.wantInvalid, got)
			}
			if n := len(b.pub.published()); n != 0 {
				t.Errorf("publisher called %d times for a rejected request", n)
			}
		})
	}
}
