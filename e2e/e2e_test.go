package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// bins are the binaries the fleet runs, as they are deployed.
var bins = map[string]*proctest.Binary{
	"publisher": proctest.NewBinary("publisher", "github.com/eventfleet/eventfleet/cmd/publisher"),
	"worker":    proctest.NewBinary("worker", "github.com/eventfleet/eventfleet/cmd/worker"),
}

// proc is a running binary whose output is captured.
type proc struct{ *proctest.Proc }

// start runs the binary name with env and PATH, nothing else inherited.
func start(t *testing.T, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	// Many processes run at once: none may take the default METRICS_ADDR.
	kvs := []string{"PATH=" + os.Getenv("PATH"), "METRICS_ADDR=127.0.0.1:0"}
	for k, v := range env {
		kvs = append(kvs, k+"="+v)
	}
	return &proc{proctest.Start(t, bins[name].Path(t), kvs, args...)}
}

func tail(s string, n int) string { return proctest.Tail(s, n) }

func (p *proc) output() (string, string) {
	return p.Stdout.String(), p.Stderr.String()
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	code, ok := p.Wait(within)
	if !ok {
		t.Fatalf("%s did not exit within %v of SIGTERM", p, within)
	}
	return code
}

// hook is the webhook receiver of app a.
type hook struct {
	mu       sync.Mutex
	attempts map[string][]time.Time // event id → arrival times
	types    map[string]string
	slow     time.Duration
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id, typ := r.Header.Get("X-Event-Id"), r.Header.Get("X-Event-Type")
	h.mu.Lock()
	h.attempts[id] = append(h.attempts[id], time.Now())
	h.types[id] = typ
	slow := h.slow
	h.mu.Unlock()
	if typ == "PoisonEvent" {
		http.Error(w, "cannot process poison", http.StatusInternalServerError)
		return
	}
	if slow > 0 && typ == "SlowEvent" {
		time.Sleep(slow) // the slow handler's work, still running at SIGTERM
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) seenAll(ids []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if len(h.attempts[id]) == 0 {
			return false
		}
	}
	return true
}

type input struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id"`
	Data        json.RawMessage `json:"data"`
}

func TestFleet_EveryAppGetsItsEventsPoisonIsDeadLetteredAndSIGTERMDrains(t *testing.T) {
	url := brokertest.URL(t)
	exchange := brokertest.Name(t)
	appA, appB := brokertest.Name(t)+"-a", brokertest.Name(t)+"-b"
	delays := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	var queues, hops []string
	for _, app := range []string{appA, appB} {
		q := amqp.AppQueue(app)
		hops = append(hops, amqp.HopsExchange(q))
		queues = append(queues, q, amqp.DeadQueue(q))
		for _, d := range delays {
			queues = append(queues, amqp.RetryQueue(q, d))
		}
	}
	brokertest.Cleanup(t, append(queues, amqp.UnroutedQueue(exchange)), append(hops, exchange))

	h := &hook{attempts: map[string][]time.Time{}, types: map[string]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	common := map[string]string{"AMQP_URL": url, "EXCHANGE": exchange, "LOG_LEVEL": "info"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	envA := with(map[string]string{
		"APP_NAME": appA, "HANDLER": "webhook", "WEBHOOK_URL": srv.URL,
		"EVENT_TYPES":  "CardAddedToLibraryEvent,PaymentReceivedEvent,PoisonEvent,SlowEvent",
		"RETRY_DELAYS": "200ms,400ms", "RETRY_MAX_ATTEMPTS": "3", "WORKER_CONCURRENCY": "8",
		"SHUTDOWN_TIMEOUT": "10s",
	})
	envB := with(map[string]string{
		"APP_NAME": appB, "HANDLER": "log", "EVENT_TYPES": "PaymentReceivedEvent,Billing.*",
		"RETRY_DELAYS": "200ms,400ms", "RETRY_MAX_ATTEMPTS": "3",
	})
	var workersA []*proc
	for range 3 {
		workersA = append(workersA, start(t, "worker", envA))
	}
	workerB := start(t, "worker", envB)
	// Workers log "consuming" after their queue is declared and bound; no
	// event may be published before that.
	for _, w := range append(workersA, workerB) {
		brokertest.Eventually(t, 30*time.Second, "worker consuming", func() bool {
			_, e := w.output()
			return strings.Contains(e, `"msg":"consuming"`)
		})
	}

	// 3000 events over five types.
	types := []string{"CardAddedToLibraryEvent", "PaymentReceivedEvent", "Billing.Invoiced", "NobodyCaresEvent"}
	var lines bytes.Buffer
	var forA, forB, unrouted, poison []string
	for i := range 3000 {
		typ := types[i%len(types)]
		if i%100 == 7 {
			typ = "PoisonEvent"
		}
		id := fmt.Sprintf("e2e-%05d", i)
		b, _ := json.Marshal(input{ID: id, Type: typ, AggregateID: fmt.Sprintf("agg-%d", i%17), Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		lines.Write(b)
		lines.WriteByte('\n')
		switch typ {
		case "CardAddedToLibraryEvent":
			forA = append(forA, id)
		case "PaymentReceivedEvent":
			forA = append(forA, id)
			forB = append(forB, id)
		case "Billing.Invoiced":
			forB = append(forB, id)
		case "NobodyCaresEvent":
			unrouted = append(unrouted, id)
		case "PoisonEvent":
			poison = append(poison, id)
		}
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := start(t, "publisher", with(map[string]string{"APP_NAME": "e2e-publisher"}), "publish", "--file", file)
	select {
	case <-pub.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("publisher publish did not finish")
	}
	out, errOut := pub.output()
	if pub.Code() != 0 || strings.TrimSpace(out) != "published=3000 failed=0" {
		t.Fatalf("publisher: exit %d, stdout %q, stderr %s", pub.Code(), out, tail(errOut, 2000))
	}

	// App a: each of its events, app b: each of its events, via different handlers.
	brokertest.Eventually(t, 2*time.Minute, "app a handled all its events", func() bool { return h.seenAll(forA) })
	seenB := func() map[string]int {
		out, _ := workerB.output()
		got := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				ID          string `json:"id"`
				Type        string `json:"type"`
				AggregateID string `json:"aggregate_id"`
				Attempt     int    `json:"attempt"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("worker b stdout line is not JSON: %q", sc.Text())
			}
			got[line.ID]++
		}
		return got
	}
	brokertest.Eventually(t, 2*time.Minute, "app b handled all its events", func() bool {
		got := seenB()
		for _, id := range forB {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	// Nothing for b that b did not subscribe to; nothing for a beyond its types.
	for id := range seenB() {
		if !strings.HasPrefix(id, "e2e-") {
			t.Fatalf("app b handled an unknown event %q", id)
		}
	}
	h.mu.Lock()
	for id, typ := range h.types {
		if typ == "Billing.Invoiced" || typ == "NobodyCaresEvent" {
			t.Errorf("app a received %s event %s it did not subscribe to", typ, id)
		}
	}
	h.mu.Unlock()

	// Unsubscribed events are kept, not dropped.
	if n := brokertest.Depth(t, amqp.UnroutedQueue(exchange)); n != len(unrouted) {
		t.Errorf("unrouted queue holds %d, want %d", n, len(unrouted))
	}
	// Poison: exactly 3 attempts each, spaced by the delays, then app a's DLQ.
	deadA := amqp.DeadQueue(amqp.AppQueue(appA))
	brokertest.Eventually(t, time.Minute, "poison dead-lettered", func() bool { return brokertest.Depth(t, deadA) == len(poison) })
	h.mu.Lock()
	for _, id := range poison {
		at := h.attempts[id]
		if len(at) != 3 {
			t.Errorf("poison %s: %d attempts, want 3", id, len(at))
			continue
		}
		for i, d := range delays {
			if gap := at[i+1].Sub(at[i]); gap < d {
				t.Errorf("poison %s: attempt %d came %v after the previous, want ≥ %v", id, i+2, gap, d)
			}
		}
	}
	h.mu.Unlock()
	if n := brokertest.Depth(t, amqp.DeadQueue(amqp.AppQueue(appB))); n != 0 {
		t.Errorf("app b dead-lettered %d events", n)
	}
	dupsA, dupsB := 0, 0
	h.mu.Lock()
	for id, at := range h.attempts {
		if h.types[id] != "PoisonEvent" {
			dupsA += len(at) - 1
		}
	}
	h.mu.Unlock()
	for _, n := range seenB() {
		dupsB += n - 1
	}
	t.Logf("published 3000: app a handled %d (+%d duplicates), app b %d (+%d duplicates), unrouted %d, poison dead-lettered %d after 3 attempts",
		len(forA), dupsA, len(forB), dupsB, len(unrouted), len(poison))

	// SIGTERM drains: slow events in flight finish or go back to the queue.
	h.mu.Lock()
	h.slow = 300 * time.Millisecond
	h.mu.Unlock()
	var slow bytes.Buffer
	var slowIDs []string
	for i := range 60 {
		id := fmt.Sprintf("slow-%03d", i)
		slowIDs = append(slowIDs, id)
		b, _ := json.Marshal(input{ID: id, Type: "SlowEvent", Data: json.RawMessage(`{}`)})
		slow.Write(b)
		slow.WriteByte('\n')
	}
	file2 := filepath.Join(t.TempDir(), "slow.ndjson")
	if err := os.WriteFile(file2, slow.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pubSlow := start(t, "publisher", with(map[string]string{"APP_NAME": "e2e-publisher"}), "publish", "--file", file2)
	<-pubSlow.Done()
	brokertest.Eventually(t, 30*time.Second, "slow events in flight", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, id := range slowIDs {
			n += len(h.attempts[id])
		}
		return n >= 8
	})
	for _, w := range workersA {
		if code := w.stop(t, 15*time.Second); code != 0 {
			_, e := w.output()
			t.Fatalf("worker a exited %d after SIGTERM: %s", code, tail(e, 2000))
		}
	}
	if code := workerB.stop(t, 15*time.Second); code != 0 {
		t.Fatalf("worker b exited %d after SIGTERM", code)
	}
	// Whatever was not handled is still in the queue: a new worker finishes it.
	start(t, "worker", envA)
	brokertest.Eventually(t, time.Minute, "every slow event handled after restart", func() bool { return h.seenAll(slowIDs) })
	if n := brokertest.Depth(t, deadA); n != len(poison) {
		t.Errorf("dead-letter queue of a holds %d after the drain, want %d", n, len(poison))
	}
}
