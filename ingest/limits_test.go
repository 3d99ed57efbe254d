package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/ingest"
)

// events returns a JSON array of n events of type A.
func events(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(`{"type":"A"},`, n), ",") + "]"
}

// nested returns an event whose data makes it depth levels deep.
func nested(depth int) string {
	return `{"type":"A","data":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

func newHandler(t *testing.T, cfg ingest.Config) http.Handler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.Keys == nil {
		cfg.Auth = ingest.AuthNone // the limits are the same for every caller
	}
	h, err := ingest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHandler_Limits: each limit is answered as documented, and a refused
// request publishes nothing.
func TestHandler_Limits(t *testing.T) {
	t.Parallel()
	tiny := "[" + strings.Repeat(`{"type":"A"},`, 80_000) + `{"type":"A"}]` // ~1 MiB
	tests := []struct {
		name       string
		cfg        ingest.Config
		body       string
		wantStatus int
		wantError  string
	}{
		{name: "MaxEvents", cfg: ingest.Config{MaxEvents: 3}, body: events(4), wantStatus: 413,
			wantError: "4 events in one request, the limit is 3: send at most 3 events per request"},
		{name: "MaxEvents exactly", cfg: ingest.Config{MaxEvents: 3}, body: events(3), wantStatus: 202},
		{name: "DefaultMaxEvents", body: events(ingest.DefaultMaxEvents + 1), wantStatus: 413, wantError: "501 events in one request, the limit is 500"},
		{name: "DefaultMaxEvents exactly", body: events(ingest.DefaultMaxEvents), wantStatus: 202},
		{name: "80,001 tiny events in 1 MiB", body: tiny, wantStatus: 413, wantError: "80001 events in one request"},
		{name: "MaxEvents counts invalid elements", cfg: ingest.Config{MaxEvents: 2}, body: `[1,2,3]`, wantStatus: 413},
		{name: "MaxDepth", cfg: ingest.Config{MaxDepth: 4}, body: nested(5), wantStatus: 400,
			wantError: "an event nests 5 levels deep, the limit is 4 (the event object is level 1)"},
		{name: "MaxDepth exactly", cfg: ingest.Config{MaxDepth: 4}, body: nested(4), wantStatus: 202},
		{name: "MaxDepth in an array", cfg: ingest.Config{MaxDepth: 4}, body: "[" + nested(4) + "," + nested(5) + "]", wantStatus: 400, wantError: "5 levels"},
		{name: "MaxDepth array not counted", cfg: ingest.Config{MaxDepth: 4}, body: "[" + nested(4) + "]", wantStatus: 202},
		{name: "DefaultMaxDepth", body: nested(ingest.DefaultMaxDepth + 1), wantStatus: 400, wantError: "the limit is 64"},
		{name: "DefaultMaxDepth exactly", body: nested(ingest.DefaultMaxDepth), wantStatus: 202},
		{name: "brackets in strings are not depth", cfg: ingest.Config{MaxDepth: 2}, body: `{"type":"A","data":{"k":"[[[[{{{{"}}`, wantStatus: 202},
		{name: "id over 255 bytes", body: `{"type":"A","id":"` + strings.Repeat("i", 256) + `"}`, wantStatus: 400, wantError: "the limit is 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{connected: true}
			tt.cfg.Publisher = pub
			resp, got := serveRequest(t, newHandler(t, tt.cfg), http.MethodPost, "/events", "application/json", tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; answer %.300v", resp.StatusCode, tt.wantStatus, got)
			}
			if msg, _ := got["error"].(string); !strings.Contains(msg, tt.wantError) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantError)
			}
			if n := len(pub.published()); (n != 0) != (tt.wantStatus == 202) {
				t.Errorf("publisher called %d times, answer %d", n, tt.wantStatus)
			}
		})
	}
}

// gate is a Publisher that holds every PublishBatch until released, then
// hands it to next (a fake, or a real Publisher).
type gate struct {
	next    ingest.Publisher
	entered chan int // receives each held batch's size
	release chan struct{}
}

func newGate(next ingest.Publisher) *gate {
	return &gate{next: next, entered: make(chan int, 16), release: make(chan struct{})}
}

func (g *gate) PublishBatch(ctx context.Context, evs []event.Event) error {
	g.entered <- len(evs)
	<-g.release
	return g.next.PublishBatch(ctx, evs)
}

func (g *gate) Connected() bool { return g.next.Connected() }

// TestHandler_MaxInFlight_RefusesAtOnce: while one request holds the room
// in flight, another is answered 429 with Retry-After without waiting, and
// succeeds once the first is answered.
func TestHandler_MaxInFlight_RefusesAtOnce(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	g := newGate(pub)
	h := newHandler(t, ingest.Config{Publisher: g, MaxEvents: 3, MaxInFlight: 4})

	first := make(chan int, 1)
	go func() {
		resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(3))
		first <- resp.StatusCode
	}()
	<-g.entered // 3 of 4 in flight

	resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(2))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("second request: %d Retry-After %q %v, want 429 Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	if msg, _ := got["error"].(string); !strings.Contains(msg, "too many events awaiting the broker's confirms (the limit is 4") {
		t.Errorf("error %q, want it to name the limit", msg)
	}
	// One event still fits beside the three.
	go func() { <-g.entered }()
	close(g.release)
	if resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a request that fits: %d %v, want 202", resp.StatusCode, got)
	}
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first request: %d, want 202", code)
	}
	// The first request's room is released: the refused one now passes.
	if resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(2)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("second request again: %d %v, want 202", resp.StatusCode, got)
	}
	if n := len(pub.published()); n != 3 {
		t.Errorf("%d batches published, want 3 (the refused request none)", n)
	}
}

// TestHandler_Rate: Rate 1, Burst 2: two events pass, the third is 429
// with the wait in Retry-After.
func TestHandler_Rate(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	h := newHandler(t, ingest.Config{Publisher: pub, MaxEvents: 2, Rate: 1, Burst: 2})
	for i := range 2 {
		if resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1)); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("event %d: %d %v, want 202", i+1, resp.StatusCode, got)
		}
	}
	resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third event: %d Retry-After %q %v, want 429 Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	if msg, _ := got["error"].(string); !strings.Contains(msg, "rate limit: 1 events exceed the anonymous caller's 1 events/s (burst 2)") {
		t.Errorf("error %q, want it to name the rate", msg)
	}
	if n := len(pub.published()); n != 2 {
		t.Errorf("%d batches published, want 2", n)
	}
}

// TestHandler_Rate_AllOrNothing: a request takes all its tokens or none.
func TestHandler_Rate_AllOrNothing(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	h := newHandler(t, ingest.Config{Publisher: pub, MaxEvents: 3, Rate: 0.01, Burst: 4})
	if resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(3)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("3 of 4 tokens: %d, want 202", resp.StatusCode)
	}
	resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(2))
	// 2 tokens wanted, 1 there: (2-1)/0.01 = 100 s.
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "100" {
		t.Fatalf("2 events, 1 token: %d Retry-After %q, want 429 Retry-After 100", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The refused request took nothing: the last token is still there.
	if resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("1 event, 1 token: %d, want 202", resp.StatusCode)
	}
}

// TestHandler_Rate_RefundedWhenNoRoom: tokens taken by a request then
// refused for room in flight are given back.
func TestHandler_Rate_RefundedWhenNoRoom(t *testing.T) {
	t.Parallel()
	g := newGate(&fakePublisher{connected: true})
	h := newHandler(t, ingest.Config{Publisher: g, MaxEvents: 1, MaxInFlight: 1, Rate: 0.001, Burst: 2})
	first := make(chan int, 1)
	go func() {
		resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1))
		first <- resp.StatusCode
	}()
	<-g.entered // 1 token left, no room
	resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(got["error"].(string), "awaiting the broker's confirms") {
		t.Fatalf("no room: %d %v, want 429 for room in flight", resp.StatusCode, got)
	}
	close(g.release)
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first: %d, want 202", code)
	}
	go func() { <-g.entered }()
	if resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("after the refusal: %d %v, want 202 on the token given back", resp.StatusCode, got)
	}
	if resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third event: %d, want 429 (the bucket of 2 is empty)", resp.StatusCode)
	}
}

// TestHandler_MaxInFlight_Concurrent: under -race, many requests at once
// never admit more than MaxInFlight events.
func TestHandler_MaxInFlight_Concurrent(t *testing.T) {
	t.Parallel()
	var (
		mu        sync.Mutex
		now, peak int
	)
	pub := &fakePublisher{connected: true, publish: func(ctx context.Context, evs []event.Event) error {
		mu.Lock()
		now += len(evs)
		peak = max(peak, now)
		mu.Unlock()
		mu.Lock()
		now -= len(evs)
		mu.Unlock()
		return nil
	}}
	h := newHandler(t, ingest.Config{Publisher: pub, MaxEvents: 5, MaxInFlight: 10})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", events(1+i%5))
			if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("status %d %v, want 202 or 429", resp.StatusCode, got)
			}
		})
	}
	wg.Wait()
	if peak > 10 {
		t.Errorf("peak %d events in PublishBatch at once, want ≤ MaxInFlight 10", peak)
	}
}

// TestHandler_AnswerBounded: the ids of a 503 are at most MaxEvents, each
// at most 255 bytes, at most 512 bytes as JSON.
func TestHandler_AnswerBounded(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true, publish: func(ctx context.Context, evs []event.Event) error { return context.DeadlineExceeded }}
	h := newHandler(t, ingest.Config{Publisher: pub})
	var b strings.Builder
	b.WriteString("[")
	for i := range ingest.DefaultMaxEvents {
		if i > 0 {
			b.WriteString(",")
		}
		// 255 bytes that JSON escapes: '"' and '\' take 2, '<' would take 6 if escaped.
		id := fmt.Sprintf("%03d", i) + strings.Repeat(`<\"`, 84)
		fmt.Fprintf(&b, `{"type":"A","id":%q}`, id)
	}
	b.WriteString("]")
	req := httpRequest(b.String())
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %.300s", rec.Code, rec.Body.String())
	}
	if max := ingest.DefaultMaxEvents*(512+1) + 1024; rec.Body.Len() > max {
		t.Errorf("503 answer of %d bytes, want ≤ %d", rec.Body.Len(), max)
	}
	t.Logf("503 answer: %d bytes for %d ids of 255 bytes", rec.Body.Len(), ingest.DefaultMaxEvents)
}

func httpRequest(body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}
