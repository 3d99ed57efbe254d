package chaos

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

// Poison scenarios: events no handler will ever take must end in the app's
// dead-letter queue after a bounded number of attempts, without wedging the
// queue or the worker, and without taking good events with them.

// poisonLong reports whether -chaos.long was given (the flag is defined by
// the harness; without it the short form runs).
func poisonLong() bool {
	f := flag.Lookup("chaos.long")
	return f != nil && f.Value.String() == "true"
}

func poisonScale(short, long int) int {
	if poisonLong() {
		return long
	}
	return short
}

// poisonLogger discards worker logs (thousands of panics and timeouts are
// expected here); EF_TEST_LOG=1 sends them to the test log.
func poisonLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EF_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(poisonTLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type poisonTLog struct{ t testing.TB }

func (w poisonTLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// poisonBackoff reconnects quickly in tests.
var poisonBackoff = retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// poisonWorld is one scenario's names on the shared broker, deleted at the end.
type poisonWorld struct {
	url      string
	exchange string
	app      string
	policy   retry.Policy
}

func (w poisonWorld) queue() string { return amqp.AppQueue(w.app) }
func (w poisonWorld) dead() string  { return amqp.DeadQueue(w.queue()) }

func poisonSetup(t *testing.T, policy retry.Policy) poisonWorld {
	t.Helper()
	w := poisonWorld{url: brokertest.URL(t), exchange: brokertest.Name(t), app: brokertest.Name(t), policy: policy}
	queues := []string{w.queue(), w.dead(), amqp.UnroutedQueue(w.exchange)}
	for _, d := range policy.WithDefaults().Stages() {
		queues = append(queues, amqp.RetryQueue(w.queue(), d))
	}
	brokertest.Cleanup(t, queues, []string{w.exchange, amqp.HopsExchange(w.queue())})
	return w
}

// worker starts a library worker of the world's app and waits until it consumes.
func (w poisonWorld) worker(t *testing.T, cfg amqp.WorkerConfig, h event.Handler) *amqp.Worker {
	t.Helper()
	cfg.URL, cfg.Exchange, cfg.App, cfg.Retry = w.url, w.exchange, w.app, w.policy
	cfg.Backoff = poisonBackoff
	cfg.Logger = poisonLogger(t)
	wk := workertest.Start(t, cfg, h)
	workertest.WaitReady(t, wk, 20*time.Second)
	return wk
}

func (w poisonWorld) publisher(t *testing.T) *amqp.Publisher {
	t.Helper()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: w.url, Exchange: w.exchange, Backoff: poisonBackoff,
		Logger: poisonLogger(t)})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("publisher Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

// poisonPublish publishes evs in one batch and records each outcome in c.
func poisonPublish(t *testing.T, p *amqp.Publisher, c *Checker, evs []event.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := p.PublishBatch(ctx, evs)
	var be *amqp.BatchError
	switch {
	case err == nil:
		for _, e := range evs {
			c.Published(e.ID, nil)
		}
	case errors.As(err, &be):
		for i, e := range evs {
			c.Published(e.ID, be.Errs[i])
		}
		t.Fatalf("publish: %v", err)
	default:
		t.Fatalf("publish: %v", err)
	}
}

// poisonCalls records every handler call: id → attempt numbers, in order.
type poisonCalls struct {
	mu    sync.Mutex
	calls map[string][]int
}

func (r *poisonCalls) add(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string][]int{}
	}
	r.calls[e.ID] = append(r.calls[e.ID], e.Attempt)
}

func (r *poisonCalls) of(id string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[id])
}

func (r *poisonCalls) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.calls {
		n += len(a)
	}
	return n
}

// TestPoisonExactAttemptsThenDeadLetter: handlers that always fail, always
// panic or always time out get each poison event exactly MaxAttempts times,
// then it sits in the dead-letter queue as exhausted; good events published
// alongside are all handled and the worker keeps consuming.
func TestPoisonExactAttemptsThenDeadLetter(t *testing.T) {
	t.Parallel()
	const maxAttempts = 4
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, MaxAttempts: maxAttempts}
	world := poisonSetup(t, policy)
	n := poisonScale(20, 500)       // events per poison kind
	goods := poisonScale(100, 1000) // good events
	check := NewChecker()
	calls := &poisonCalls{}

	h := event.NewRegistry().
		OnFunc("PoisonError", func(_ context.Context, e event.Event) error {
			calls.add(e)
			return fmt.Errorf("poison %s: always fails", e.ID)
		}).
		OnFunc("PoisonPanic", func(_ context.Context, e event.Event) error {
			calls.add(e)
			panic("poison: always panics")
		}).
		OnFunc("PoisonTimeout", func(ctx context.Context, e event.Event) error {
			calls.add(e)
			<-ctx.Done()
			return ctx.Err()
		}).
		OnFunc("Good", func(_ context.Context, e event.Event) error {
			calls.add(e)
			check.Handled(e.ID)
			return nil
		})
	w := world.worker(t, amqp.WorkerConfig{Concurrency: 32, HandlerTimeout: 200 * time.Millisecond}, h)
	p := world.publisher(t)

	kinds := []string{"PoisonError", "PoisonPanic", "PoisonTimeout"}
	wantErr := map[string]string{"PoisonError": "always fails", "PoisonPanic": "handler panic", "PoisonTimeout": "timed out after 200ms"}
	kindOf := map[string]string{}
	var evs []event.Event
	for i := range max(n, goods) {
		for _, k := range kinds {
			if i < n {
				id := fmt.Sprintf("%s-%05d", k, i)
				kindOf[id] = k
				evs = append(evs, event.Event{ID: id, Type: k, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
			}
		}
		if i < goods {
			id := fmt.Sprintf("Good-%05d", i)
			kindOf[id] = "Good"
			evs = append(evs, event.Event{ID: id, Type: "Good", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
		}
	}
	start := time.Now()
	poisonPublish(t, p, check, evs)

	poison := len(kinds) * n
	brokertest.Eventually(t, 120*time.Second, fmt.Sprintf("%d poison events in the dead-letter queue", poison), func() bool {
		return brokertest.Depth(t, world.dead()) >= poison
	})
	brokertest.Eventually(t, 30*time.Second, "good events handled", func() bool {
		return w.Stats().Handled == int64(goods)
	})
	settled := time.Since(start)
	time.Sleep(500 * time.Millisecond) // negative check: would a stray extra attempt follow?

	for id, k := range kindOf {
		got := calls.of(id)
		if k == "Good" {
			if len(got) != 1 || got[0] != 1 {
				t.Errorf("good event %s handled with attempts %v, want [1]", id, got)
			}
			continue
		}
		if !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Errorf("%s event %s handed to the handler with attempts %v, want exactly [1 2 3 4]", k, id, got)
		}
	}

	dead := brokertest.Drain(t, world.dead(), -1, 500*time.Millisecond)
	if len(dead) != poison {
		t.Errorf("dead-letter queue held %d messages, want %d", len(dead), poison)
	}
	for _, d := range dead {
		check.Dead(d.MessageId)
		k := kindOf[d.MessageId]
		if !strings.HasPrefix(k, "Poison") {
			t.Errorf("dead letter %q is not a poison event (kind %q)", d.MessageId, k)
			continue
		}
		if r := d.Headers[amqp.HeaderReason]; r != string(amqp.ReasonExhausted) {
			t.Errorf("%s: reason %v, want exhausted", d.MessageId, r)
		}
		if a, ok := amqp.IntHeader(d.Headers, amqp.HeaderAttempt); !ok || a != maxAttempts {
			t.Errorf("%s: %s = %#v, want %d", d.MessageId, amqp.HeaderAttempt, d.Headers[amqp.HeaderAttempt], maxAttempts)
		}
		if msg, _ := d.Headers[amqp.HeaderLastError].(string); !strings.Contains(msg, wantErr[k]) {
			t.Errorf("%s: last error %q does not say %q", d.MessageId, msg, wantErr[k])
		}
		if d.Headers[amqp.HeaderRoutingKey] != k || d.Headers[amqp.HeaderApp] != world.app {
			t.Errorf("%s: routing key %v / app %v, want %s / %s", d.MessageId,
				d.Headers[amqp.HeaderRoutingKey], d.Headers[amqp.HeaderApp], k, world.app)
		}
	}

	// Nothing left behind, and the worker still takes new work.
	for _, q := range append([]string{world.queue()}, poisonRetryQueues(world)...) {
		if d := brokertest.Depth(t, q); d != 0 {
			t.Errorf("queue %s still holds %d messages", q, d)
		}
	}
	if !w.Consuming() {
		t.Fatal("worker no longer consuming after the poison events")
	}
	late := []event.Event{{ID: "Good-late", Type: "Good", Data: []byte(`{}`)}}
	kindOf["Good-late"] = "Good"
	poisonPublish(t, p, check, late)
	// Handled counts after the handler returns and its ack is queued, a
	// moment after the call the handler records: wait for both.
	brokertest.Eventually(t, 10*time.Second, "late good event handled", func() bool {
		return len(calls.of("Good-late")) == 1 && w.Stats().Handled >= int64(goods+1)
	})

	st := w.Stats()
	if st.Handled != int64(goods+1) || st.DeadLettered != int64(poison) || st.Retried != int64(poison*(maxAttempts-1)) {
		t.Errorf("stats %+v, want handled=%d dead=%d retried=%d", st, goods+1, poison, poison*(maxAttempts-1))
	}
	rep := check.Report(func(id string) bool { _, ok := kindOf[id]; return ok })
	t.Logf("poison=%d (x%d kinds) good=%d handler calls=%d settled in %v; stats %+v; checker: %v",
		n, len(kinds), goods, calls.total(), settled.Round(time.Millisecond), st, rep)
	if !rep.OK() || rep.Handled != goods+1 || rep.DeadLettered != poison || rep.Duplicates != 0 {
		t.Fatalf("checker: %v", rep)
	}
}

func poisonRetryQueues(w poisonWorld) []string {
	var qs []string
	for _, d := range w.policy.WithDefaults().Stages() {
		qs = append(qs, amqp.RetryQueue(w.queue(), d))
	}
	return qs
}

// The crash-loop scenario runs its worker in a child process (this test
// binary again, running TestPoisonCrashHelper) so that the worker can die
// for real: os.Exit in the middle of a handler, no ack, no graceful anything.
const (
	poisonChildEnv         = "EVENTFLEET_POISON_CHILD"
	poisonChildURL         = "EVENTFLEET_POISON_URL"
	poisonChildExchange    = "EVENTFLEET_POISON_EXCHANGE"
	poisonChildApp         = "EVENTFLEET_POISON_APP"
	poisonChildConcurrency = "EVENTFLEET_POISON_CONCURRENCY"
	poisonChildPrefetch    = "EVENTFLEET_POISON_PREFETCH"
	poisonDeliveryLimit    = 3
	poisonCrashExit        = 3
)

// poisonCrashConfig is the worker configuration of parent and child alike:
// the queue arguments must match or the second declare fails.
func poisonCrashConfig(url, exchange, app string, concurrency, prefetch int) amqp.WorkerConfig {
	return amqp.WorkerConfig{
		URL: url, Exchange: exchange, App: app,
		Concurrency:   concurrency,
		Prefetch:      prefetch,
		DeliveryLimit: poisonDeliveryLimit,
		Retry:         retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2},
		Backoff:       poisonBackoff,
	}
}

// TestPoisonCrashHelper is the child process of
// TestPoisonCrashLoopStoppedByDeliveryLimit; it does nothing in a normal run.
// It runs a worker whose handler kills the process on events of type Crash
// and prints "poison-handled <id>" for every other event it handled. It stops
// gracefully (exit 0) when its stdin closes, which also happens when the
// parent dies, so it cannot outlive the test.
func TestPoisonCrashHelper(t *testing.T) {
	if os.Getenv(poisonChildEnv) != "1" {
		t.Skip("child process of TestPoisonCrashLoopStoppedByDeliveryLimit")
	}
	concurrency, _ := strconv.Atoi(os.Getenv(poisonChildConcurrency))
	prefetch, _ := strconv.Atoi(os.Getenv(poisonChildPrefetch))
	cfg := poisonCrashConfig(os.Getenv(poisonChildURL), os.Getenv(poisonChildExchange), os.Getenv(poisonChildApp),
		concurrency, prefetch)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var out sync.Mutex // one line per write, never interleaved
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", a...)
	}
	h := event.HandlerFunc(func(_ context.Context, e event.Event) error {
		if e.Type == "Crash" {
			count, _ := amqp.IntHeader(e.Headers, "x-delivery-count")
			say("poison-crash %s attempt=%d x-delivery-count=%d", e.ID, e.Attempt, count)
			os.Exit(poisonCrashExit)
		}
		say("poison-handled %s", e.ID)
		return nil
	})
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-w.Done():
		t.Fatalf("worker stopped: %v", w.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// poisonChild is one run of the child worker process.
type poisonChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

func poisonStartChild(t *testing.T, world poisonWorld, concurrency, prefetch int, lines chan<- string) *poisonChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPoisonCrashHelper$", "-test.count=1", "-test.timeout=120s")
	cmd.Env = append(os.Environ(),
		poisonChildEnv+"=1",
		poisonChildURL+"="+world.url,
		poisonChildExchange+"="+world.exchange,
		poisonChildApp+"="+world.app,
		poisonChildConcurrency+"="+strconv.Itoa(concurrency),
		poisonChildPrefetch+"="+strconv.Itoa(prefetch),
	)
	c := &poisonChild{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child worker: %v", err)
	}
	// No child outlives its test, whatever happens.
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		// Stdout is done; only now may Wait close the pipe.
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c
}

// kill ends the child at once and returns its stderr, safe to read only
// once it has exited.
func (c *poisonChild) kill() string {
	_ = c.cmd.Process.Kill()
	<-c.exited
	return c.stderr.String()
}

func (c *poisonChild) exitCode() int {
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		return -1
	}
	return 0
}

// poisonDeadReader reads a dead-letter queue as it fills, on one channel.
type poisonDeadReader struct {
	t     *testing.T
	ch    *amqp091.Channel
	queue string
	got   map[string]amqp091.Delivery // by message_id
	extra int                         // deliveries beyond the first per id
}

func (r *poisonDeadReader) drain() {
	r.t.Helper()
	for {
		d, ok, err := r.ch.Get(r.queue, true /* autoAck */)
		if err != nil {
			r.t.Fatalf("get from %s: %v", r.queue, err)
		}
		if !ok {
			return
		}
		if _, dup := r.got[d.MessageId]; dup {
			r.extra++
		}
		r.got[d.MessageId] = d
	}
}

func poisonDeathReason(d amqp091.Delivery) any {
	deaths, _ := d.Headers["x-death"].([]any)
	if len(deaths) == 0 {
		return nil
	}
	if x, ok := deaths[0].(amqp091.Table); ok {
		return x["reason"]
	}
	return nil
}

// TestPoisonCrashLoopStoppedByDeliveryLimit: an event that kills its worker
// process every time is dead-lettered by the quorum queue's delivery limit
// after a bounded number of restarts (limit+1 crashes), and nothing is lost.
//
// With prefetch 1 the crashing worker holds nothing but the poison event, so
// every good event published around it is handled. With the worker's default
// prefetch (64) the broker also counts a delivery against every event the
// dying worker had prefetched but not acked. Found by this suite: the good
// events redelivered right behind the poison event each time reached the
// limit too and were dead-lettered unhandled (10 of 50 "bystanders"). A
// worker session now starts with prefetch 1 and opens its window only at the
// first delivery that was never delivered before, so a crash loop returns the
// poison event alone; the defaults variant asserts every good event is
// handled too.
func TestPoisonCrashLoopStoppedByDeliveryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		concurrency, prefetch int
		allGoodHandled        bool
	}{
		{"prefetch=1", 1, 1, true},
		{"defaults", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			poisonCrashLoop(t, tc.concurrency, tc.prefetch, tc.allGoodHandled)
		})
	}
}

func poisonCrashLoop(t *testing.T, concurrency, prefetch int, allGoodHandled bool) {
	policy := poisonCrashConfig("", "", "", 0, 0).Retry
	world := poisonSetup(t, policy)
	goods := poisonScale(50, 500)

	// Declare the topology with the child's exact configuration, then get out
	// of the way: only child processes consume.
	cfg := poisonCrashConfig(world.url, world.exchange, world.app, concurrency, prefetch)
	cfg.Logger = poisonLogger(t)
	setup := workertest.Start(t, cfg, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	workertest.WaitReady(t, setup, 20*time.Second)
	if err := setup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	check := NewChecker()
	known := map[string]bool{"crash-0": true}
	var evs []event.Event
	for i := range goods {
		if i == goods/2 {
			evs = append(evs, event.Event{ID: "crash-0", Type: "Crash", Data: []byte(`{}`)})
		}
		id := fmt.Sprintf("good-%05d", i)
		known[id] = true
		evs = append(evs, event.Event{ID: id, Type: "Good", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	poisonPublish(t, world.publisher(t), check, evs)

	lines := make(chan string, 1024)
	var (
		mu      sync.Mutex
		handled = map[string]int{}
		crashes []string
	)
	// Children only write to lines while they run; close it once all are
	// gone (cleanups run last-in first-out, so after the children's).
	reading := make(chan struct{})
	var closeLines sync.Once
	stopReading := func() { closeLines.Do(func() { close(lines) }); <-reading }
	t.Cleanup(stopReading)
	go func() {
		defer close(reading)
		for l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "poison-handled":
				mu.Lock()
				handled[f[1]]++
				mu.Unlock()
				check.Handled(f[1])
			case len(f) >= 2 && f[0] == "poison-crash":
				mu.Lock()
				crashes = append(crashes, strings.Join(f[1:], " "))
				mu.Unlock()
			}
		}
	}()
	dead := &poisonDeadReader{t: t, ch: brokertest.Channel(t), queue: world.dead(), got: map[string]amqp091.Delivery{}}
	// settled: the poison event is dead and every good one handled (or, with
	// bystanders allowed, dead-lettered).
	settled := func() bool {
		dead.drain()
		if _, ok := dead.got["crash-0"]; !ok {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range goods {
			id := fmt.Sprintf("good-%05d", i)
			if _, isDead := dead.got[id]; handled[id] == 0 && (allGoodHandled || !isDead) {
				return false
			}
		}
		return true
	}

	start := time.Now()
	maxStarts := 1 + poisonDeliveryLimit + 2 // the first start and at most limit+2 restarts
	starts := 0
	var exits []int
	for done := false; !done; {
		if starts == maxStarts {
			mu.Lock()
			msg := fmt.Sprintf("still not settled after %d child starts (exits %v, crashes %v, %d of %d good events handled)",
				starts, exits, crashes, len(handled), goods)
			mu.Unlock()
			t.Fatalf("%s; %d dead letters", msg, len(dead.got))
		}
		starts++
		c := poisonStartChild(t, world, concurrency, prefetch, lines)
		tick := time.NewTicker(50 * time.Millisecond)
		limit := time.After(30 * time.Second)
	watch:
		for {
			select {
			case <-c.exited:
				code := c.exitCode()
				exits = append(exits, code)
				t.Logf("child %d exited with %d after %v", starts, code, time.Since(start).Round(time.Millisecond))
				if code != poisonCrashExit {
					t.Fatalf("child %d exited with %v, want exit %d from the crash handler; stderr:\n%s",
						starts, c.err, poisonCrashExit, c.stderr)
				}
				break watch
			case <-tick.C:
				if settled() {
					// Settled: stop this child the graceful way.
					_ = c.stdin.Close()
					select {
					case <-c.exited:
					case <-time.After(15 * time.Second):
						t.Fatalf("child %d did not stop after its stdin closed; stderr:\n%s", starts, c.kill())
					}
					exits = append(exits, c.exitCode())
					// The child may have crashed on the poison's last delivery
					// just before the broker dead-lettered it (that crash is
					// what settled the run); any other failure is an error.
					if c.err != nil && c.exitCode() != poisonCrashExit {
						t.Errorf("child %d did not stop cleanly: %v; stderr:\n%s", starts, c.err, c.stderr)
					}
					done = true
					break watch
				}
			case <-limit:
				mu.Lock()
				nh := len(handled)
				mu.Unlock()
				t.Fatalf("child %d neither crashed nor settled within 30s (%d of %d good events handled, %d dead letters, app queue depth %d); stderr:\n%s",
					starts, nh, goods, len(dead.got), brokertest.Depth(t, world.queue()), c.kill())
			}
		}
		tick.Stop()
	}
	elapsed := time.Since(start)
	stopReading()
	time.Sleep(200 * time.Millisecond) // negative check: would a late dead letter follow?
	dead.drain()

	crash := dead.got["crash-0"]
	if r := poisonDeathReason(crash); r != "delivery_limit" {
		t.Errorf("crash event x-death = %v, want reason delivery_limit", crash.Headers["x-death"])
	}
	if r, ok := crash.Headers[amqp.HeaderReason]; ok {
		t.Errorf("broker dead letter carries %s=%v: no worker should have dead-lettered it", amqp.HeaderReason, r)
	}
	var bystanders []string
	for id, d := range dead.got {
		check.Dead(id)
		if id == "crash-0" {
			continue
		}
		bystanders = append(bystanders, id)
		if r := poisonDeathReason(d); r != "delivery_limit" {
			t.Errorf("good event %s dead-lettered with x-death %v", id, d.Headers["x-death"])
		}
	}
	slices.Sort(bystanders)
	if d := brokertest.Depth(t, world.queue()); d != 0 {
		t.Errorf("app queue still holds %d messages", d)
	}
	mu.Lock()
	nCrashes, nHandled := len(crashes), len(handled)
	t.Logf("child starts=%d (restarts=%d, bound %d) exits=%v; crash event handed over %d times: %v; x-death=%v; elapsed %v",
		starts, starts-1, poisonDeliveryLimit+2, exits, nCrashes, crashes, crash.Headers["x-death"], elapsed.Round(time.Millisecond))
	mu.Unlock()
	if nCrashes != poisonDeliveryLimit+1 {
		t.Errorf("the crash event was handed to a worker %d times, want delivery limit %d + 1", nCrashes, poisonDeliveryLimit)
	}
	if starts-1 > poisonDeliveryLimit+2 {
		t.Errorf("%d restarts, want at most %d", starts-1, poisonDeliveryLimit+2)
	}
	rep := check.Report(func(id string) bool { return known[id] })
	t.Logf("good events: %d handled, %d dead-lettered unhandled as bystanders of the crash loop %v; checker: %v",
		nHandled, len(bystanders), bystanders, rep)
	if !rep.OK() {
		t.Fatalf("checker: %v", rep)
	}
	if allGoodHandled && (nHandled != goods || len(bystanders) > 0) {
		t.Fatalf("%d of %d good events handled, %d dead-lettered with the poison event", nHandled, goods, len(bystanders))
	}
}

// TestMalformedInboundIsDeadLetteredWorkerKeepsRunning: messages from foreign
// publishers that are not readable events go to the dead-letter queue as
// undecodable, saying why; odd but readable ones are handled; the worker
// keeps running throughout.
func TestMalformedInboundIsDeadLetteredWorkerKeepsRunning(t *testing.T) {
	t.Parallel()
	world := poisonSetup(t, retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2})
	const maxBody = 64 << 10
	var (
		mu      sync.Mutex
		handled = map[string][]event.Event{} // by routing key / type
	)
	check := NewChecker()
	h := event.HandlerFunc(func(_ context.Context, e event.Event) error {
		mu.Lock()
		handled[e.Type] = append(handled[e.Type], e)
		mu.Unlock()
		check.Handled(e.ID)
		return nil
	})
	w := world.worker(t, amqp.WorkerConfig{MaxBody: maxBody}, h)
	ch := brokertest.Channel(t)
	if err := ch.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	// raw publishes as a foreign client would: straight to the exchange,
	// nothing filled in. It reports whether the broker confirmed it.
	raw := func(key string, msg amqp091.Publishing) error {
		dc, err := ch.PublishWithDeferredConfirm(world.exchange, key,
			false, // mandatory
			false, // immediate
			msg)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return amqp.ErrNacked
		}
		return nil
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"zipped":true}`))
	_ = zw.Close()
	manyHeaders := amqp091.Table{}
	for i := range 1000 {
		manyHeaders[fmt.Sprintf("h-%04d", i)] = fmt.Sprintf("value-%d", i)
	}
	bigHeader := amqp091.Table{"big": strings.Repeat("x", 100<<10)}
	exotic := amqp091.Table{
		"bool": true, "int8": int8(-8), "int16": int16(-16), "int32": int32(-32), "int64": int64(-64),
		"float32": float32(1.5), "float64": 2.5, "bytes": []byte{0, 1, 2}, "time": time.Unix(1700000000, 0),
		"decimal": amqp091.Decimal{Scale: 2, Value: 12345}, "nil": nil,
		"table": amqp091.Table{"nested": amqp091.Table{"deep": "yes"}}, "array": []any{"a", int32(1), amqp091.Table{"k": "v"}},
	}
	bigBody := []byte(`"` + strings.Repeat("y", maxBody) + `"`)

	type tcase struct {
		name    string
		key     string
		msg     amqp091.Publishing
		wantErr string // substring of the dead letter's last error; "" = handled
	}
	cases := []tcase{
		{"invalid JSON", "MalformedJSON", amqp091.Publishing{MessageId: "m-json", Body: []byte(`{"a":`)}, "not valid JSON"},
		{"text/plain", "MalformedText", amqp091.Publishing{MessageId: "m-text", ContentType: "text/plain", Body: []byte(`{"a":1}`)}, `content type "text/plain" is not JSON`},
		{"gzip", "MalformedGzip", amqp091.Publishing{MessageId: "m-gzip", ContentType: "application/json", ContentEncoding: "gzip", Body: gz.Bytes()}, `content encoding "gzip" is not supported`},
		{"empty body", "MalformedEmpty", amqp091.Publishing{MessageId: "m-empty"}, "not valid JSON"},
		{"body over MaxBody", "MalformedBig", amqp091.Publishing{MessageId: "m-bigbody", Body: bigBody}, fmt.Sprintf("body is %d bytes, the limit is %d", len(bigBody), maxBody)},
		{"wildcard in type", "MalformedWild", amqp091.Publishing{MessageId: "m-wild", Type: "Card*", Body: []byte(`{}`)}, "binding wildcards"},
		{"no type, empty routing key", "", amqp091.Publishing{MessageId: "m-notype", Body: []byte(`{}`)}, "missing"},
		{"control char in routing key", "Bad\x01Key", amqp091.Publishing{MessageId: "m-ctrl", Body: []byte(`{}`)}, "control character"},
		{"invalid UTF-8 routing key", "Bad\xffKey", amqp091.Publishing{MessageId: "m-utf8", Body: []byte(`{}`)}, "not valid UTF-8"},
		{"1000 headers, bad body", "MalformedManyHeaders", amqp091.Publishing{MessageId: "m-many-bad", Headers: manyHeaders, Body: []byte("nope")}, "not valid JSON"},
		{"100 KiB header, bad body", "MalformedBigHeader", amqp091.Publishing{MessageId: "m-bighdr-bad", Headers: bigHeader, Body: []byte("nope")}, "not valid JSON"},
		{"exotic header types, bad body", "MalformedExotic", amqp091.Publishing{MessageId: "m-exotic-bad", Headers: exotic, Body: []byte("nope")}, "not valid JSON"},
		// Odd but readable: handled.
		{"no properties at all", "ForeignNoProps", amqp091.Publishing{Body: []byte(`{"bare":true}`)}, ""},
		{"1000 headers", "ForeignManyHeaders", amqp091.Publishing{MessageId: "m-many", Headers: manyHeaders, Body: []byte(`{}`)}, ""},
		{"100 KiB header", "ForeignBigHeader", amqp091.Publishing{MessageId: "m-bighdr", Headers: bigHeader, Body: []byte(`{}`)}, ""},
		{"exotic header types", "ForeignExotic", amqp091.Publishing{MessageId: "m-exotic", Headers: exotic, Body: []byte(`{}`)}, ""},
	}
	want := map[string]tcase{}
	wantDead, wantHandled := 0, 0
	for _, c := range cases {
		err := raw(c.key, c.msg)
		if err != nil {
			var ae *amqp091.Error
			if errors.As(err, &ae) {
				// The broker refused it (closing our channel): nothing to
				// dead-letter. Carry on with a fresh channel.
				t.Logf("%s: broker refused the publish: %v (skipped)", c.name, err)
				ch = brokertest.Channel(t)
				if err := ch.Confirm(false /* noWait */); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Fatalf("%s: publish: %v", c.name, err)
		}
		if c.msg.MessageId != "" {
			check.Published(c.msg.MessageId, nil)
		}
		want[c.msg.MessageId] = c
		if c.wantErr != "" {
			wantDead++
		} else {
			wantHandled++
		}
	}

	brokertest.Eventually(t, 20*time.Second, fmt.Sprintf("%d dead letters", wantDead), func() bool {
		return brokertest.Depth(t, world.dead()) >= wantDead
	})
	brokertest.Eventually(t, 20*time.Second, fmt.Sprintf("%d handled", wantHandled), func() bool {
		return w.Stats().Handled >= int64(wantHandled)
	})

	// The worker survived all of it: a good event still goes through.
	goodID := "m-good-after"
	if err := raw("GoodAfter", amqp091.Publishing{MessageId: goodID, ContentType: "application/json", Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	check.Published(goodID, nil)
	brokertest.Eventually(t, 10*time.Second, "good event after the malformed ones handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled["GoodAfter"]) == 1
	})
	if !w.Consuming() {
		t.Error("worker no longer consuming")
	}

	dead := brokertest.Drain(t, world.dead(), -1, 300*time.Millisecond)
	seen := map[string]bool{}
	for _, d := range dead {
		check.Dead(d.MessageId)
		c, ok := want[d.MessageId]
		if !ok || c.wantErr == "" {
			t.Errorf("unexpected dead letter %q (headers %v)", d.MessageId, poisonShortHeaders(d.Headers))
			continue
		}
		seen[d.MessageId] = true
		if c.key == "MalformedBig" {
			// Over MaxBody: the worker never read the body and rejected the
			// delivery; the broker moved the message as it was.
			m := deadletter.ReadMessage(&d, false)
			if m.Reason != amqp.ReasonOversized || d.Headers[amqp.HeaderReason] != nil || !bytes.Equal(d.Body, c.msg.Body) {
				t.Errorf("%s: reason %q, our reason header %v, body %d bytes (want %d): want the broker's move of the whole message",
					c.name, m.Reason, d.Headers[amqp.HeaderReason], len(d.Body), len(c.msg.Body))
			}
			continue
		}
		last, _ := d.Headers[amqp.HeaderLastError].(string)
		if d.Headers[amqp.HeaderReason] != string(amqp.ReasonUndecodable) || !strings.Contains(last, c.wantErr) {
			t.Errorf("%s: reason %v, last error %q; want undecodable saying %q", c.name, d.Headers[amqp.HeaderReason], last, c.wantErr)
		}
		if a, ok := amqp.IntHeader(d.Headers, amqp.HeaderAttempt); !ok || a != 1 {
			t.Errorf("%s: %s = %#v, want 1", c.name, amqp.HeaderAttempt, d.Headers[amqp.HeaderAttempt])
		}
		if d.Headers[amqp.HeaderRoutingKey] != c.key || d.Headers[amqp.HeaderExchange] != world.exchange {
			t.Errorf("%s: origin %v/%v, want %q/%q", c.name, d.Headers[amqp.HeaderExchange], d.Headers[amqp.HeaderRoutingKey], world.exchange, c.key)
		}
		if !bytes.Equal(d.Body, c.msg.Body) || d.ContentType != c.msg.ContentType || d.ContentEncoding != c.msg.ContentEncoding {
			t.Errorf("%s: dead letter changed the message: body %d bytes (want %d), type %q/%q", c.name, len(d.Body), len(c.msg.Body), d.ContentType, d.ContentEncoding)
		}
		// The original headers travel with the dead letter, all of them.
		for k, v := range c.msg.Headers {
			got, ok := d.Headers[k]
			if !ok {
				t.Errorf("%s: header %q lost on the way to the dead-letter queue", c.name, k)
				continue
			}
			if s, isStr := v.(string); isStr && got != s {
				t.Errorf("%s: header %q changed", c.name, k)
			}
		}
		if size := poisonTableSize(d.Headers); size > 131072 {
			t.Errorf("%s: dead letter headers are %d bytes, over frame_max", c.name, size)
		} else if c.msg.Headers != nil {
			t.Logf("%s: dead letter with %d headers, ~%d bytes of header table (frame_max 131072)", c.name, len(d.Headers), size)
		}
	}
	for id, c := range want {
		if c.wantErr != "" && !seen[id] {
			t.Errorf("%s (%s): not in the dead-letter queue", c.name, id)
		}
	}

	mu.Lock()
	for id, c := range want {
		if c.wantErr != "" {
			if len(handled[c.key]) > 0 {
				t.Errorf("%s: handled, want dead-lettered", c.name)
			}
			continue
		}
		got := handled[c.key]
		if len(got) != 1 {
			t.Errorf("%s: handled %d times, want 1", c.name, len(got))
			continue
		}
		e := got[0]
		if e.Type != c.key || string(e.Data) != string(c.msg.Body) || e.ID == "" || (id != "" && e.ID != id) {
			t.Errorf("%s: handler got type %q id %q data %s", c.name, e.Type, e.ID, e.Data)
		}
		if id == "" {
			// The derived id of the bare message: known now, counted as published.
			check.Published(e.ID, nil)
		}
		for k := range c.msg.Headers {
			if _, ok := e.Headers[k]; !ok {
				t.Errorf("%s: handler did not get header %q", c.name, k)
			}
		}
	}
	mu.Unlock()

	st := w.Stats()
	if st.DeadLettered != int64(wantDead) || st.Handled != int64(wantHandled+1) {
		t.Errorf("stats %+v, want dead=%d handled=%d", st, wantDead, wantHandled+1)
	}
	rep := check.Report(nil)
	t.Logf("dead=%d handled=%d stats %+v; checker: %v", len(dead), wantHandled+1, st, rep)
	if !rep.OK() || rep.Duplicates != 0 {
		t.Fatalf("checker: %v", rep)
	}
}

// poisonTableSize estimates a header table's encoded size (AMQP field table):
// enough to see how close a dead letter came to frame_max.
func poisonTableSize(t amqp091.Table) int {
	n := 4
	for k, v := range t {
		n += 1 + len(k) + poisonFieldSize(v)
	}
	return n
}

func poisonFieldSize(v any) int {
	switch x := v.(type) {
	case string:
		return 1 + 4 + len(x)
	case []byte:
		return 1 + 4 + len(x)
	case amqp091.Table:
		return 1 + poisonTableSize(x)
	case []any:
		n := 1 + 4
		for _, e := range x {
			n += poisonFieldSize(e)
		}
		return n
	default:
		return 1 + 8
	}
}

func poisonShortHeaders(h amqp091.Table) map[string]any {
	out := map[string]any{}
	for k, v := range h {
		if strings.HasPrefix(k, "eventfleet-") {
			out[k] = v
		}
	}
	return out
}

// TestPoisonHugeHeadersDeadLetterFitsFrameMax: a foreign message whose header
// table is close to the broker's frame_max (131072) must still be
// dead-lettered. Found by this suite: the hop added ~400 bytes of eventfleet-*
// headers, the broker closed the hop connection with FRAME_ERROR
// frame_too_large, and the publisher reconnected and republished about ten
// times a second until the quorum delivery limit dead-lettered the message
// minutes later. Hops now drop the largest foreign headers to fit (and name
// them in eventfleet-dropped-headers).
func TestPoisonHugeHeadersDeadLetterFitsFrameMax(t *testing.T) {
	t.Parallel()
	world := poisonSetup(t, retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2})
	w := world.worker(t, amqp.WorkerConfig{}, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	ch := brokertest.Channel(t)
	if err := ch.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	// 131038 bytes is the largest single string header RabbitMQ 3.10 accepts
	// with message_id "m-edge" (measured); leave 200 bytes of room.
	dc, err := ch.PublishWithDeferredConfirm(world.exchange, "Edge",
		false, // mandatory
		false, // immediate
		amqp091.Publishing{MessageId: "m-edge", Headers: amqp091.Table{"big": strings.Repeat("x", 131038-200)}, Body: []byte("nope")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ok, err := dc.WaitContext(ctx); !ok || err != nil {
		t.Fatalf("broker did not take the message: %v %v", ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for brokertest.Depth(t, world.dead()) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("undecodable message with %d bytes of headers not dead-lettered after 10s (stats %+v): "+
				"the hop exceeds frame_max (run with EF_TEST_LOG=1 to see FRAME_ERROR frame_too_large)", 131038-200, w.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
