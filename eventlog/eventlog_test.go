package eventlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

	if w.writes < 1 || w.writes > n {
		t.Errorf("%d Write calls for %d events, want at most one each", w.writes, n)
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

// gatedWriter holds its first Write until release is closed, and fails every
// later one.
type gatedWriter struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	writes  [][]byte
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	first := len(w.writes) == 1
	w.mu.Unlock()
	if !first {
		return 0, errors.New("disk full")
	}
	close(w.entered)
	<-w.release
	return len(p), nil
}

func TestHandle_LinesWaitingForAWriteGoTogetherAndShareItsError(t *testing.T) {
	t.Parallel()
	w := &gatedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	h := New(w)
	ev := func(id string) event.Event {
		return event.Event{ID: id, Type: "T", Attempt: 1, Data: json.RawMessage(`{}`)}
	}
	first := make(chan error, 1)
	go func() { first <- h.Handle(context.Background(), ev("first")) }()
	<-w.entered

	const waiting = 5
	errs := make(chan error, waiting)
	for i := range waiting {
		go func() { errs <- h.Handle(context.Background(), ev(fmt.Sprintf("w%d", i))) }()
	}
	// Wait until every line has joined the next batch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		joined := 0
		if h.next != nil {
			joined = bytes.Count(h.next.buf, []byte("\n"))
		}
		h.mu.Unlock()
		if joined == waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines joined the next batch", joined, waiting)
		}
		runtime.Gosched()
	}
	close(w.release)

	if err := <-first; err != nil {
		t.Fatalf("first event: %v", err)
	}
	for range waiting {
		if err := <-errs; err == nil || retry.IsPermanent(err) || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("an event of the failed write: got %v, want a retryable error with the write's", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.writes) != 2 {
		t.Fatalf("%d Write calls, want 2 (the first line, then the %d waiting ones together)", len(w.writes), waiting)
	}
	if got := bytes.Count(w.writes[1], []byte("\n")); got != waiting || !bytes.HasSuffix(w.writes[1], []byte("\n")) {
		t.Errorf("second Write %q: want %d whole lines", w.writes[1], waiting)
	}
}

// BenchmarkHandleParallel is the log handler's cost per event with
// concurrent handlers writing to a pipe, as the worker's handlers write to
// its stdout.
func BenchmarkHandleParallel(b *testing.B) {
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cw := &countingWriter{w: pw}
	h := New(cw)
	data := json.RawMessage(`{"ts":"0000000000000000000","payload":"` + strings.Repeat("x", 466) + `"}`)
	ev := event.Event{ID: "0190c0de-0000-7000-8000-000000000001", Type: "BenchEvent", AggregateID: "library-42",
		Source: "efbench", Time: time.Unix(1764620000, 0), Attempt: 1, Data: data}
	b.SetParallelism(8) // 16 handlers on 2 CPUs, as the worker's default
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := h.Handle(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cw.writes.Load())/float64(b.N), "writes/op")
	pw.Close()
}

type countingWriter struct {
	w      io.Writer
	writes atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.w.Write(p)
}
