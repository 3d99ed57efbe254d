package eventlog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// TestHandle_ForeignValuesNeverFail: what a foreign publisher may set and
// JSON cannot show is left out of the line (an unshowable time) or replaced
// (invalid UTF-8 becomes U+FFFD); the event is written either way.
func TestHandle_ForeignValuesNeverFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ev       event.Event
		wantTime string // "" means: no time field
	}{
		{name: "year 56000 (milliseconds read as seconds)", ev: event.Event{Time: time.Unix(1764620000000, 0)}},
		{name: "before year 0", ev: event.Event{Time: time.Unix(-1<<62, 0)}},
		{name: "year 9999 is shown", ev: event.Event{Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
			wantTime: "9999-12-31T23:59:59Z"},
		{name: "control characters and invalid UTF-8 in id, aggregate and source",
			ev: event.Event{ID: "a\x1b[2J\n\xff", AggregateID: "\x00\u0085", Source: "\xfe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			ev := tt.ev
			ev.Type, ev.Attempt, ev.Data = "T", 1, json.RawMessage(`{"n":1}`)
			if ev.ID == "" {
				ev.ID = "e1"
			}
			if err := New(&buf).Handle(context.Background(), ev); err != nil {
				t.Fatalf("Handle: %v, want the event written", err)
			}
			line := buf.String()
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("not one line: %q", line)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("line is not JSON: %v: %q", err, line)
			}
			if ts, _ := got["time"].(string); ts != tt.wantTime {
				t.Errorf("time %q, want %q", ts, tt.wantTime)
			}
		})
	}
}

// BenchmarkHandle is the log handler's cost per ordinary event.
func BenchmarkHandle(b *testing.B) {
	h := New(io.Discard)
	ev := event.Event{ID: "0190c0de-0000-7000-8000-000000000001", Type: "CardAddedToLibraryEvent", AggregateID: "library-42",
		Source: "catalog", Time: time.Unix(1764620000, 0), Attempt: 1, Data: json.RawMessage(`{"card":7,"title":"Card 7"}`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
