package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
	"github.com/eventfleet/eventfleet/webhook"
)

// Scenarios 3 and 4 run the worker as it is deployed: the cmd/worker binary,
// several processes sharing one app's queue, HANDLER=webhook pointing at a
// server in the test. The faults are the ones a process meets in production:
// SIGKILL (OOM killer, a crashed host) and SIGTERM (a rolling deploy).

// TestWorkersKilledMidHandler SIGKILLs worker processes while their handlers
// run and starts replacements. Unacked deliveries of a killed worker go back
// to the queue, so every confirmed event must still be handled: duplicates
// are expected, losses are not.
func TestWorkersKilledMidHandler(t *testing.T) {
	kills, events := 3, 1500
	if procLong() {
		kills, events = 20, 20000
	}
	f := procNewFleet(t, func() time.Duration {
		return 20*time.Millisecond + rand.N(30*time.Millisecond)
	})

	workers := make([]*procWorker, 3)
	for i := range workers {
		workers[i] = f.start(t)
	}
	for _, w := range workers {
		w.waitConsuming(t)
	}

	// Publish for a little longer than the kills go on (one a second), so
	// the last kill too finds handlers running.
	published := procPublish(t, f, procIDs(events), events/(kills+1), nil)

	for k := range kills {
		time.Sleep(700*time.Millisecond + rand.N(600*time.Millisecond)) // paces the kills: the fault itself
		i := rand.N(len(workers))
		inflight := f.hook.inflight.Load()
		workers[i].Kill(t)
		t.Logf("kill %d/%d: SIGKILLed %s (webhook requests in flight: %d)", k+1, kills, workers[i], inflight)
		workers[i] = f.start(t)
	}
	select {
	case <-published:
	case <-time.After(2 * time.Minute):
		t.Fatal("publishing did not finish within 2m")
	}

	r := f.settle(t, time.Minute)
	// A kill lands mid-handler in one of two ways: during the webhook
	// request (the server sees the client go away; the broker redelivers)
	// or after the 2xx but before the ack (a duplicate). Under -race on
	// two cores the workers lag, and most kills land in the second way.
	cut := f.hook.interrupted.Load()
	t.Logf("webhook: %d requests, %d cut short by a kill; duplicates: %d (handled, worker killed before the ack)",
		f.hook.requests.Load(), cut, r.Duplicates)
	if cut == 0 && r.Duplicates == 0 {
		t.Errorf("no kill hit a running handler: the scenario did not test what it says")
	}
}

// TestWorkersRollingRestart restarts the worker processes one at a time with
// SIGTERM, as a Fly deploy does, while events flow. Each worker must let its
// running handlers finish (well within SHUTDOWN_TIMEOUT), exit 0, and nothing
// may be lost or cut short.
func TestWorkersRollingRestart(t *testing.T) {
	const shutdown = 5 * time.Second
	rounds, maxEvents := 2, 5000
	if procLong() {
		rounds, maxEvents = 10, 30000
	}
	f := procNewFleet(t, func() time.Duration { return 100 * time.Millisecond },
		"SHUTDOWN_TIMEOUT="+shutdown.String())

	workers := make([]*procWorker, 3)
	for i := range workers {
		workers[i] = f.start(t)
	}
	for _, w := range workers {
		w.waitConsuming(t)
	}

	// 200/s keeps ~20 handlers of 100 ms busy over three workers (16 each),
	// so every SIGTERM finds handlers running and deliveries prefetched.
	stop := make(chan struct{})
	published := procPublish(t, f, procIDs(maxEvents), 200, stop)
	brokertest.Eventually(t, 30*time.Second, "webhook requests in flight", func() bool { return f.hook.inflight.Load() > 0 })

	for round := range rounds {
		for i, w := range workers {
			inflight := f.hook.inflight.Load()
			began := time.Now()
			w.Signal(t, syscall.SIGTERM)
			// With -race the exit takes ~1s longer: the race runtime sleeps
			// at exit (GORACE atexit_sleep_ms, default 1000).
			code, ok := w.Wait(shutdown + 2*time.Second)
			took := time.Since(began)
			if !ok {
				t.Fatalf("round %d: %s still running %v after SIGTERM (SHUTDOWN_TIMEOUT=%v)", round+1, w, took.Round(time.Millisecond), shutdown)
			}
			if code != 0 {
				t.Errorf("round %d: %s exited with %d after SIGTERM, want 0", round+1, w, code)
			}
			if strings.Contains(w.Stderr.String(), "shutdown timeout passed") {
				t.Errorf("round %d: %s hit SHUTDOWN_TIMEOUT with 100 ms handlers", round+1, w)
			}
			workers[i] = f.start(t)
			workers[i].waitConsuming(t)
			t.Logf("round %d: %s stopped in %v (webhook requests in flight at SIGTERM: %d); %s consuming after %v",
				round+1, w, took.Round(time.Millisecond), inflight, workers[i], time.Since(began).Round(time.Millisecond))
		}
	}
	close(stop)
	select {
	case <-published:
	case <-time.After(time.Minute):
		t.Fatal("publishing did not stop within 1m")
	}

	r := f.settle(t, time.Minute)
	t.Logf("webhook: %d requests, %d cut short; duplicates: %d", f.hook.requests.Load(), f.hook.interrupted.Load(), r.Duplicates)
	if n := f.hook.interrupted.Load(); n > 0 {
		t.Errorf("%d webhook requests were cut short: a graceful stop interrupted running handlers", n)
	}
}

// procLong reports whether -chaos.long was given.
func procLong() bool {
	f := flag.Lookup("chaos.long")
	return f != nil && f.Value.String() == "true"
}

// procWorkerBin is cmd/worker, built for the first scenario that runs it.
var procWorkerBin = proctest.NewBinary("worker", "github.com/eventfleet/eventfleet/cmd/worker")

// procHook is the webhook endpoint the workers POST to. It records what it
// handled in the checker, and counts the requests whose client went away
// before the handler finished (a worker killed or stopped mid-request).
type procHook struct {
	check *Checker
	delay func() time.Duration

	requests    atomic.Int64
	inflight    atomic.Int64
	interrupted atomic.Int64
}

func (h *procHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	id := r.Header.Get(webhook.HeaderEventID)
	// Reading the body to its end lets net/http watch the connection, so
	// r.Context() ends when the client goes away.
	_, _ = io.Copy(io.Discard, r.Body)
	timer := time.NewTimer(h.delay())
	select {
	case <-timer.C:
	case <-r.Context().Done():
		timer.Stop()
	}
	if r.Context().Err() != nil {
		// The worker is gone: it will not ack, so this does not count as
		// handled; the broker redelivers the event.
		h.interrupted.Add(1)
		return
	}
	h.check.Handled(id)
	w.WriteHeader(http.StatusNoContent)
}

// procFleet is one scenario's world: an app and exchange of its own on the
// shared broker, the webhook server, a publisher, and the worker processes.
type procFleet struct {
	url       string
	exchange  string
	app       string
	dead      string
	check     *Checker
	hook      *procHook
	pub       *amqp.Publisher
	pubLog    *proctest.Buffer
	env       []string
	known     map[string]bool // filled by procIDs before publishing; read-only after
	started   atomic.Int64
	drainCh   *amqp091.Channel
	drainMu   sync.Mutex
	eventType string
}

// procNewFleet sets up f for t. Cleanups run last-in first-out: worker
// processes (started later) are killed first, then the publisher and the
// webhook server stop, and last the exchange and queues are deleted, so no
// worker is left to declare them again.
func procNewFleet(t *testing.T, delay func() time.Duration, extraEnv ...string) *procFleet {
	t.Helper()
	procWorkerBin.Path(t) // build before anything starts
	url := brokertest.URL(t)
	f := &procFleet{
		url:       url,
		exchange:  brokertest.Name(t),
		app:       brokertest.Name(t),
		check:     NewChecker(),
		pubLog:    &proctest.Buffer{},
		known:     map[string]bool{},
		eventType: "ChaosWorkerEvent",
	}
	queue := amqp.AppQueue(f.app)
	f.dead = amqp.DeadQueue(queue)
	delays := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	queues := []string{queue, f.dead, amqp.UnroutedQueue(f.exchange)}
	for _, d := range delays {
		queues = append(queues, amqp.RetryQueue(queue, d))
	}
	brokertest.Cleanup(t, queues, []string{f.exchange, amqp.HopsExchange(queue)})

	f.hook = &procHook{check: f.check, delay: delay}
	srv := httptest.NewServer(f.hook)
	t.Cleanup(srv.Close)

	f.env = []string{
		"AMQP_URL=" + url,
		"EXCHANGE=" + f.exchange,
		"APP_NAME=" + f.app,
		"LOG_LEVEL=info",
		"HANDLER=webhook",
		"WEBHOOK_URL=" + srv.URL + "/events",
		"RETRY_DELAYS=100ms,200ms",
		"METRICS_ADDR=127.0.0.1:0", // several workers run at once
	}
	f.env = append(f.env, extraEnv...)

	pub, err := amqp.NewPublisher(amqp.PublisherConfig{
		URL:      url,
		Exchange: f.exchange,
		AppID:    "chaos",
		Logger:   slog.New(slog.NewTextHandler(f.pubLog, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pub.Stop(ctx)
		if t.Failed() {
			t.Logf("publisher log:\n%s", proctest.Tail(f.pubLog.String(), 4000))
		}
	})
	f.drainCh = brokertest.Channel(t)
	return f
}

// procIDs returns n event ids; procPublish registers them as known.
func procIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ev-%06d", i)
	}
	return ids
}

// procPublish publishes ids at about rate per second from a pool of callers,
// recording every outcome in the checker, until all were published or stop
// is closed. The returned channel is closed once every publish has returned.
// If the test ends first (it failed), publishing is cut short and waited for.
func procPublish(t *testing.T, f *procFleet, ids []string, rate int, stop <-chan struct{}) <-chan struct{} {
	for _, id := range ids {
		f.known[id] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	todo := make(chan string)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range todo {
				pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
				err := f.pub.Publish(pctx, event.Event{ID: id, Type: f.eventType, Data: []byte(`{"chaos":true}`)})
				pcancel()
				f.check.Published(id, err)
			}
		}()
	}
	go func() {
		defer close(done)
		defer wg.Wait()
		defer close(todo)
		const tick = 10 * time.Millisecond
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		began := time.Now()
		next := 0
		for next < len(ids) {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			// Catch up to where the rate says we should be.
			due := min(len(ids), int(time.Since(began).Seconds()*float64(rate)))
			for ; next < due; next++ {
				select {
				case todo <- ids[next]:
				case <-stop:
					return
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return done
}

// start starts one more worker process with exactly f's environment.
func (f *procFleet) start(t *testing.T) *procWorker {
	t.Helper()
	n := f.started.Add(1)
	p := proctest.Start(t, procWorkerBin.Path(t), f.env)
	return &procWorker{Proc: p, name: fmt.Sprintf("worker %d (pid %d)", n, p.Pid())}
}

// settle waits until every confirmed event was handled or dead-lettered (or
// timeout), moving dead letters into the checker as it goes, then reports.
// It fails the test on a loss, a phantom, or any dead letter: nothing in
// these scenarios is poison.
func (f *procFleet) settle(t *testing.T, timeout time.Duration) Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	dead := f.drainDead(t)
	for !f.check.Settled() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		dead += f.drainDead(t)
	}
	dead += f.drainDead(t)
	r := f.check.Report(func(id string) bool { return f.known[id] })
	t.Log(r)
	if !r.OK() {
		t.Errorf("promise broken (queue %s holds %d ready): %v", amqp.AppQueue(f.app), brokertest.Depth(t, amqp.AppQueue(f.app)), r)
	}
	if r.Confirmed == 0 {
		t.Error("nothing was confirmed: the scenario proved nothing")
	}
	if dead > 0 {
		t.Errorf("%d events were dead-lettered; none should be", dead)
	}
	return r
}

// drainDead moves what is in the dead-letter queue into the checker.
func (f *procFleet) drainDead(t *testing.T) int {
	t.Helper()
	f.drainMu.Lock()
	defer f.drainMu.Unlock()
	n := 0
	for {
		d, ok, err := f.drainCh.Get(f.dead, true /* autoAck */)
		if err != nil {
			// The workers declared the queue before they consumed.
			t.Fatalf("get from %s: %v", f.dead, err)
		}
		if !ok {
			return n
		}
		t.Logf("dead letter %s: reason %v, error %v", d.MessageId, d.Headers[amqp.HeaderReason], d.Headers[amqp.HeaderLastError])
		f.check.Dead(d.MessageId)
		n++
	}
}

// procWorker is one running worker process.
type procWorker struct {
	*proctest.Proc
	name string // "worker 3 (pid 1234)": the fleet counts its workers
}

func (w *procWorker) String() string { return w.name }

// waitConsuming waits until the worker logs that it consumes: its queue is
// declared and bound, so events published from then on reach it. A worker
// whose first attempt failed logs "consuming again" instead, though it never
// consumed before: seen when three workers declare a new quorum queue at once
// and one basic.consume gets 541 INTERNAL_ERROR.
func (w *procWorker) waitConsuming(t *testing.T) {
	t.Helper()
	w.WaitLog(t, 30*time.Second, `"msg":"consuming"`, `"msg":"consuming again"`)
}
