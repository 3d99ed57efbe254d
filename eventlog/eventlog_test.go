package eventlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// byteWriter stores each byte of a Write separately and yields in between,
// so two unsynchronised Writes would interleave their bytes. It counts Write
// calls.
type byteWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *byteWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	for _, c := range p {
		w.mu.Lock()
		w.buf.WriteByte(c)
		w.mu.Unlock()
		runtime.Gosched()
	}
	return len(p), nil
}

func TestHandle_ConcurrentLinesDoNotInterleave(t *testing.T) {
	t.Parallel()
	w := &byteWriter{}
	h := New(w)
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ev := event.Event{
				ID:          fmt.Sprintf("id-%03d", i),
				Type:        "CardAddedToLibraryEvent",
				AggregateID: fmt.Sprintf("agg-%d", i),
				Attempt:     1 + i%3,
				Data:        json.RawMessage(fmt.Sprintf(`{"n":%d,"text":%q}`, i, strings.Repeat("x", i))),
			}
			if err := h.Handle(context.Background(), ev); err != nil {
				t.Errorf("Handle: %v", err)
			}
		})
	}
	wg.Wait()

	if w.writes != n {
		t.Errorf("%d Write calls for %d events, want one each", w.writes, n)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&w.buf)
	for sc.Scan() {
		var got struct {
			ID          string          `json:"id"`
			Type        string          `json:"type"`
			AggregateID *string         `json:"aggregate_id"`
			Attempt     int             `json:"attempt"`
			Data        json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %.200q is not JSON: %v", sc.Text(), err)
		}
		var i int
		if _, err := fmt.Sscanf(got.ID, "id-%d", &i); err != nil || seen[got.ID] {
			t.Fatalf("unexpected or repeated id in %q", sc.Text())
		}
		seen[got.ID] = true
		want := fmt.Sprintf(`{"n":%d,"text":%q}`, i, strings.Repeat("x", i))
		if got.Type != "CardAddedToLibraryEvent" || got.AggregateID == nil || *got.AggregateID != fmt.Sprintf("agg-%d", i) ||
			got.Attempt != 1+i%3 || string(got.Data) != want {
			t.Errorf("line %q: fields do not match event %d", sc.Text(), i)
		}
	}
	if len(seen) != n {
		t.Errorf("%d lines, want %d", len(seen), n)
	}
}

func TestHandle_LineFormat(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		ev   event.Event
		want string
	}{
		{
			name: "all fields",
			ev: event.Event{ID: "e1", Type: "CardAdded", AggregateID: "lib-1", Source: "catalog",
				Time: published, Attempt: 2, Data: json.RawMessage(`{"card":7}`)},
			want: `{"id":"e1","type":"CardAdded","aggregate_id":"lib-1","source":"catalog","time":"2026-11-29T09:00:00.123456789Z","attempt":2,"data":{"card":7}}`,
		},
		{
			name: "zero time and no source are left out, empty aggregate kept",
			ev:   event.Event{ID: "e2", Type: "T", Attempt: 1, Data: json.RawMessage(`[]`)},
			want: `{"id":"e2","type":"T","aggregate_id":"","attempt":1,"data":[]}`,
		},
		{
			name: "multi-line data is compacted, HTML characters kept",
			ev:   event.Event{ID: "e3", Type: "T", Attempt: 1, Data: json.RawMessage("{\n  \"html\": \"<b>&</b>\"\n}\n")},
			want: `{"id":"e3","type":"T","aggregate_id":"","attempt":1,"data":{"html":"<b>&</b>"}}`,
		},
		{
			name: "no data",
			ev:   event.Event{ID: "e4", Type: "T", Attempt: 1},
			want: `{"id":"e4","type":"T","aggregate_id":"","attempt":1,"data":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := New(&buf).Handle(context.Background(), tt.ev); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := buf.String(); got != tt.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestHandle_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		writer        bool // use failingWriter
		data          string
		wantPermanent bool
		wantText      string
	}{
		{name: "write error is retryable", writer: true, data: `{}`, wantText: "disk full"},
		{name: "data that is not JSON is permanent", data: `{not json`, wantPermanent: true, wantText: `"e1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			h := New(&buf)
			if tt.writer {
				h = New(failingWriter{})
			}
			err := h.Handle(context.Background(), event.Event{ID: "e1", Type: "T", Attempt: 1, Data: json.RawMessage(tt.data)})
			if err == nil || retry.IsPermanent(err) != tt.wantPermanent || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("got %v, want an error (permanent: %v) containing %q", err, tt.wantPermanent, tt.wantText)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q for a failed event", buf.String())
			}
		})
	}
}
