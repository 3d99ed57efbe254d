package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// The tests below run the worker binary against the real broker, each in its
// own exchange and app.

const cardAdded = "CardAddedToLibraryEvent"

// logLine is the part of an eventlog line the tests read.
type logLine struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID *string         `json:"aggregate_id"`
	Source      string          `json:"source"`
	Time        string          `json:"time"`
	Attempt     int             `json:"attempt"`
	Data        json.RawMessage `json:"data"`
}

// eventLines parses stdout, failing on anything that is not an event line.
func eventLines(t *testing.T, p *proc) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range p.Stdout.Lines() {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil || ll.ID == "" {
			t.Fatalf("stdout line %q is not an event line (%v)", l, err)
		}
		out = append(out, ll)
	}
	return out
}

// checkLogsAreJSON fails on a stderr line that is not a JSON object: a
// deployment's log shipper parses every line.
func checkLogsAreJSON(t *testing.T, p *proc) {
	t.Helper()
	for _, l := range p.Stderr.Lines() {
		if !json.Valid([]byte(l)) || !strings.HasPrefix(l, "{") {
			t.Errorf("stderr line is not JSON: %q", l)
		}
	}
}

func TestWorker_LogHandlerWritesEachEventOnce(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "HANDLER=log")) // no arguments: "run" is the default
	p.waitConsuming()

	const n = 200
	msgs := make([]message, n)
	for i := range msgs {
		msgs[i] = message{id: fmt.Sprintf("ev-%03d", i), typ: cardAdded, aggregate: fmt.Sprintf("library-%d", i%7),
			body: fmt.Sprintf(`{"card":%d,"title":"Card %d"}`, i, i)}
	}
	publish(t, a.exchange, msgs...)
	brokertest.Eventually(t, 45*time.Second, fmt.Sprintf("%d event lines on stdout", n), func() bool {
		return len(p.Stdout.Lines()) >= n
	})

	p.stop(15 * time.Second) // well before SHUTDOWN_TIMEOUT's default 25s: nothing is running

	lines := eventLines(t, p)
	if len(lines) != n {
		t.Errorf("%d event lines, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(l.ID, "ev-%d", &i); err != nil || i < 0 || i >= n {
			t.Fatalf("line for unknown event %q", l.ID)
		}
		if seen[l.ID] {
			t.Errorf("event %s written twice", l.ID)
		}
		seen[l.ID] = true
		m := msgs[i]
		if l.Type != cardAdded || l.AggregateID == nil || *l.AggregateID != m.aggregate || l.Attempt != 1 ||
			l.Source != "test-publisher" || l.Time == "" || string(l.Data) != m.body {
			t.Errorf("line %+v does not match event %+v", l, m)
		}
	}
	if got := brokertest.Depth(t, a.queue); got != 0 {
		t.Errorf("%d events left in %s after a clean stop, want 0", got, a.queue)
	}
	stderr := p.Stderr.String()
	for _, want := range []string{`"msg":"starting worker"`, `"queue":"` + a.queue + `"`, `"bindings":["#"]`,
		`"handler":"log"`, `"broker":"amqp://guest:xxxxx@`, `"msg":"worker stopped"`, `"handled":200`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %s", want)
		}
	}
	checkLogsAreJSON(t, p)
}

// hook is a webhook endpoint that records every request and answers by
// aggregate: "poison" 500, "gone" 404, anything else 200.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

type hookRequest struct {
	header http.Header
	body   string
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: string(body)})
		h.mu.Unlock()
		switch r.Header.Get("X-Aggregate-Id") {
		case "poison-once":
			if r.Header.Get("X-Event-Attempt") == "1" {
				http.Error(w, "not yet", http.StatusInternalServerError)
			}
		case "poison":
			http.Error(w, "poison pill rejected", http.StatusInternalServerError)
		case "gone":
			http.Error(w, "no such library", http.StatusNotFound)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// byID returns the requests per X-Event-Id.
func (h *hook) byID() map[string][]hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]hookRequest{}
	for _, r := range h.reqs {
		id := r.header.Get("X-Event-Id")
		out[id] = append(out[id], r)
	}
	return out
}

func attempts(rs []hookRequest) []int {
	var out []int
	for _, r := range rs {
		n, _ := strconv.Atoi(r.header.Get("X-Event-Attempt"))
		out = append(out, n)
	}
	return out
}

func TestWorker_WebhookRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	a := newApp(t, 100*time.Millisecond, 200*time.Millisecond)
	h := newHook(t)
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+h.srv.URL+"/events",
		"RETRY_DELAYS=100ms,200ms", "RETRY_MAX_ATTEMPTS=3"), "run")
	p.waitConsuming()

	var good, poison []message
	for i := range 10 {
		good = append(good, message{id: fmt.Sprintf("good-%d", i), typ: cardAdded, aggregate: fmt.Sprintf("lib-%d", i),
			body: fmt.Sprintf(`{ "card": %d }`, i)})
	}
	for i := range 2 {
		poison = append(poison, message{id: fmt.Sprintf("poison-%d", i), typ: cardAdded, aggregate: "poison", body: `{"card":-1}`})
	}
	gone := message{id: "gone-0", typ: "LibraryDeletedEvent", aggregate: "gone", body: `{}`}
	publish(t, a.exchange, append(append(slices.Clone(good), poison...), gone)...)

	waitDepth(t, a.dead, len(poison)+1, 45*time.Second)
	brokertest.Eventually(t, 30*time.Second, "every good event posted", func() bool {
		got := h.byID()
		for _, m := range good {
			if len(got[m.id]) == 0 {
				return false
			}
		}
		return true
	})
	p.stop(15 * time.Second)

	got := h.byID()
	for _, m := range good {
		rs := got[m.id]
		if len(rs) != 1 {
			t.Errorf("good event %s posted %d times, want once", m.id, len(rs))
			continue
		}
		r := rs[0]
		for name, want := range map[string]string{
			"Content-Type": "application/json", "User-Agent": "eventfleet-worker", "X-Event-Type": cardAdded,
			"X-Event-Attempt": "1", "X-Aggregate-Id": m.aggregate, "X-Event-Source": "test-publisher",
		} {
			if g := r.header.Get(name); g != want {
				t.Errorf("event %s: header %s = %q, want %q", m.id, name, g, want)
			}
		}
		if r.body != m.body {
			t.Errorf("event %s: body %q, want %q exactly", m.id, r.body, m.body)
		}
	}
	for _, m := range poison {
		if at := attempts(got[m.id]); !slices.Equal(at, []int{1, 2, 3}) {
			t.Errorf("poison event %s posted with attempts %v, want [1 2 3]", m.id, at)
		}
	}
	if at := attempts(got[gone.id]); !slices.Equal(at, []int{1}) {
		t.Errorf("event answered 404 posted with attempts %v, want [1]", at)
	}

	dead := deadLetters(t, a, len(poison)+1)
	want := map[string]struct {
		reason  string
		attempt int32
	}{poison[0].id: {"exhausted", 3}, poison[1].id: {"exhausted", 3}, gone.id: {"permanent", 1}}
	for id, w := range want {
		d, ok := dead[id]
		if !ok {
			t.Errorf("event %s is not in %s", id, a.dead)
			continue
		}
		if r := d.Headers[amqp.HeaderReason]; r != w.reason {
			t.Errorf("event %s: %s = %v, want %q", id, amqp.HeaderReason, r, w.reason)
		}
		if n := d.Headers[amqp.HeaderAttempt]; n != w.attempt {
			t.Errorf("event %s: %s = %v (%T), want %d", id, amqp.HeaderAttempt, n, n, w.attempt)
		}
		if e, _ := d.Headers[amqp.HeaderLastError].(string); !strings.Contains(e, "poison pill rejected") && !strings.Contains(e, "no such library") {
			t.Errorf("event %s: %s = %q, want the endpoint's answer", id, amqp.HeaderLastError, e)
		}
	}
	for _, q := range []string{a.queue, a.queue + ".retry.100ms", a.queue + ".retry.200ms"} {
		if n := brokertest.Depth(t, q); n != 0 {
			t.Errorf("%d events left in %s, want 0", n, q)
		}
	}
	checkLogsAreJSON(t, p)
}

func TestWorker_UndecodableBodyIsDeadLettered(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "HANDLER=log"))
	p.waitConsuming()

	publish(t, a.exchange,
		message{id: "bad-0", typ: cardAdded, aggregate: "lib-1", body: `{"card": 1,`}, // cut short: not JSON
		message{id: "good-0", typ: cardAdded, aggregate: "lib-1", body: `{"card":2}`},
	)
	waitDepth(t, a.dead, 1, 30*time.Second)
	brokertest.Eventually(t, 30*time.Second, "the good event on stdout", func() bool {
		return strings.Contains(p.Stdout.String(), `"id":"good-0"`)
	})
	if p.Exited() {
		t.Fatalf("worker exited with %d after an undecodable message", p.Code())
	}
	// The worker still takes events after the bad one.
	publish(t, a.exchange, message{id: "good-1", typ: cardAdded, body: `{"card":3}`})
	brokertest.Eventually(t, 30*time.Second, "a later event on stdout", func() bool {
		return strings.Contains(p.Stdout.String(), `"id":"good-1"`)
	})
	p.stop(15 * time.Second)

	for _, l := range eventLines(t, p) {
		if l.ID == "bad-0" {
			t.Errorf("the undecodable message reached the handler: %+v", l)
		}
	}
	d := deadLetters(t, a, 1)["bad-0"]
	if r := d.Headers[amqp.HeaderReason]; r != string(amqp.ReasonUndecodable) {
		t.Errorf("%s = %v, want %q", amqp.HeaderReason, r, amqp.ReasonUndecodable)
	}
	if string(d.Body) != `{"card": 1,` {
		t.Errorf("dead letter body %q, want the original", d.Body)
	}
}

func TestWorker_UnreachableBrokerKeepsRetrying(t *testing.T) {
	t.Parallel()
	const password = "s3cr3tpw"
	p := startWorker(t, map[string]string{
		"AMQP_URL": "amqp://guest:" + password + "@127.0.0.1:1/", // nothing listens on port 1
		"APP_NAME": "unreachable-test",
	})
	started := time.Now()
	// At least two failed connection attempts, and at least 2s of life.
	brokertest.Eventually(t, 30*time.Second, "two reconnect attempts", func() bool {
		if p.Exited() {
			t.Fatalf("worker exited with %d while the broker is unreachable", p.Code())
		}
		return strings.Count(p.Stderr.String(), `"msg":"cannot consume; retrying"`) >= 2
	})
	if wait := 2*time.Second - time.Since(started); wait > 0 {
		time.Sleep(wait) // negative check: would the worker give up and exit?
	}
	if p.Exited() {
		t.Fatalf("worker exited with %d while the broker is unreachable", p.Code())
	}
	p.stop(15 * time.Second)

	stderr := p.Stderr.String()
	if strings.Contains(stderr, password) {
		t.Errorf("stderr contains the broker password:\n%s", stderr)
	}
	if !strings.Contains(stderr, `"broker":"amqp://guest:xxxxx@127.0.0.1:1/"`) {
		t.Errorf("the start log does not name the broker with the password hidden:\n%s", stderr)
	}
	if p.Stdout.String() != "" {
		t.Errorf("stdout is for event lines only, got %q", p.Stdout.String())
	}
	checkLogsAreJSON(t, p)
}

func TestWorker_TopologyMismatchExits1(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	// The app's queue already exists as a classic queue; the worker would
	// declare a quorum queue (QUEUE_TYPE's default). Reconnecting cannot fix
	// that, so the worker must stop with exit code 1 and say why.
	ch := brokertest.Channel(t)
	if _, err := ch.QueueDeclare(a.queue, true /* durable */, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p := startWorker(t, a.env(t))
	if code := p.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	stderr := p.Stderr.String()
	for _, want := range []string{"existing topology does not match", "already exists with a different", a.queue} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not explain the mismatch (%q):\n%s", want, stderr)
		}
	}
	checkLogsAreJSON(t, p)
}

func TestWorker_ShutdownTimeoutReturnsEventsToQueue(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	// An endpoint that never answers on its own: the handler is still running
	// when the shutdown deadline passes.
	called := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body to its end lets net/http notice the client
		// going away and cancel r.Context().
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case called <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(srv.Close)
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+srv.URL,
		"WEBHOOK_TIMEOUT=5m", "HANDLER_TIMEOUT=5m", "SHUTDOWN_TIMEOUT=300ms"))
	p.waitConsuming()
	publish(t, a.exchange, message{id: "slow-0", typ: cardAdded, body: `{}`})
	select {
	case <-called:
	case <-time.After(30 * time.Second):
		t.Fatal("the endpoint was never called")
	}

	p.stop(30 * time.Second)
	if !strings.Contains(p.Stderr.String(), "shutdown timeout passed; unfinished events go back to the queue") {
		t.Errorf("stderr does not report the cut-short drain:\n%s", p.Stderr.String())
	}
	// Back in the app's queue, not retried, not dead.
	waitDepth(t, a.queue, 1, 30*time.Second)
	if n := brokertest.Depth(t, a.dead); n != 0 {
		t.Errorf("%d events in %s, want 0", n, a.dead)
	}
	checkLogsAreJSON(t, p)
}

// TestWorker_SIGINT checks Ctrl-C behaves like SIGTERM.
func TestWorker_SIGINT(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t))
	p.waitConsuming()
	p.signal(syscall.SIGINT)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT, want 0", code)
	}
}

func TestWorker_SIGTERMWaitsForRunningHandlers(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	called, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case called <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+srv.URL))
	p.waitConsuming()
	publish(t, a.exchange, message{id: "drain-0", typ: cardAdded, body: `{}`})
	select {
	case <-called:
	case <-time.After(30 * time.Second):
		t.Fatal("the endpoint was never called")
	}
	p.signal(syscall.SIGTERM)
	p.waitLog("shutting down", 15*time.Second)
	if p.Exited() {
		t.Fatalf("worker exited with %d while a handler was running", p.Code())
	}
	close(release) // the endpoint answers 200 now
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !strings.Contains(p.Stderr.String(), `"handled":1`) {
		t.Errorf("the running event was not acked before exit:\n%s", p.Stderr.String())
	}
	if n := brokertest.Depth(t, a.queue); n != 0 {
		t.Errorf("%d events in %s after the drain, want 0", n, a.queue)
	}
}
