package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Control characters in an id or aggregate id would reach logs, HTTP
// headers and terminals: both ingest paths refuse them, naming the field.

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

func TestPublish_RejectsControlCharacters(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	input := strings.Join([]string{
		`{"type":"A","id":"ok-1"}`,
		`{"type":"A","id":"x\u001b[2J\n  reason:      FAKE-REASON\n"}`,
		`{"type":"A","id":"ok-2","aggregate_id":"lib\r\n1"}`,
		`{"type":"A","id":"ok-3","aggregate_id":"lib-1"}`,
	}, "\n") + "\n"
	stdout, stderr, code := runBin(t, brokerEnv(t, exchange), strings.NewReader(input), "publish")
	if stdout != "published=2 failed=2\n" || code != 1 {
		t.Fatalf("stdout %q exit %d, want published=2 failed=2 and exit 1; stderr:\n%s", stdout, code, stderr)
	}
	for _, want := range []string{
		`line 2: invalid event id: "x\x1b[2J\n  reason:      FAKE-REASON\n" contains control character U+001B`,
		`line 3: invalid aggregate_id: "lib\r\n1" contains control character U+000D`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.ContainsAny(stderr, "\x1b\r") {
		t.Errorf("stderr carries a raw control character:\n%q", stderr)
	}
	got := brokertest.Drain(t, queue, 2, 300*time.Millisecond)
	var ids []string
	for _, d := range got {
		ids = append(ids, d.MessageId)
	}
	slices.Sort(ids) // publish pipelines events: confirm order is not line order
	if strings.Join(ids, ",") != "ok-1,ok-3" {
		t.Errorf("published ids %v, want [ok-1 ok-3]", ids)
	}
}
