package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// fast is a retry policy quick enough for tests.
var fast = retry.Policy{Delays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, MaxAttempts: 3}

func publishAll(t *testing.T, p *amqp.Publisher, evs ...event.Event) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.PublishBatch(ctx, evs); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	return ids
}

func TestWorker_HandlesEveryEventOnceAndAcks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder(nil)
	w := b.worker(t, amqp.WorkerConfig{Retry: fast}, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	evs := make([]event.Event, 500)
	for i := range evs {
		evs[i] = ev("CardAddedToLibraryEvent", fmt.Sprintf("lib-%d", i), i)
	}
	ids := publishAll(t, p, evs...)
	brokertest.Eventually(t, 20*time.Second, "all events handled", func() bool { return rec.distinct() == len(ids) })
	brokertest.Eventually(t, 5*time.Second, "acks counted", func() bool { return w.Stats().Handled == int64(len(ids)) })
	for _, id := range ids {
		if got := rec.attempts(id); len(got) != 1 || got[0] != 1 {
			t.Fatalf("event %s handled with attempts %v, want [1]", id, got)
		}
	}
	got := rec.seen[ids[7]][0]
	if got.Type != "CardAddedToLibraryEvent" || got.AggregateID != "lib-7" || string(got.Data) != `{"n":7}` {
		t.Fatalf("handler got %+v", got)
	}
	if d := brokertest.Depth(t, w.Queue()); d != 0 {
		t.Fatalf("queue depth %d after handling, want 0", d)
	}
}

func TestWorker_RetriesWithDelaysThenDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var firstAt, lastAt atomic.Int64
	rec := newRecorder(func(e event.Event) error {
		now := time.Now().UnixNano()
		firstAt.CompareAndSwap(0, now)
		lastAt.Store(now)
		return fmt.Errorf("downstream said no (attempt %d)", e.Attempt)
	})
	w := b.worker(t, amqp.WorkerConfig{Retry: fast}, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("Poison", "agg-1", 1))

	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 20*time.Second, "dead letter", func() bool { return brokertest.Depth(t, dead) == 1 })
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("attempts = %v, want [1 2 3]", got)
	}
	// Two delays of at least 50ms and 100ms lie between first and last attempt.
	if gap := time.Duration(lastAt.Load() - firstAt.Load()); gap < 150*time.Millisecond {
		t.Errorf("attempts spread over %v, want at least the 150ms of delays", gap)
	}
	d := brokertest.Drain(t, dead, 1, time.Second)[0]
	h := d.Headers
	for k, want := range map[string]any{
		amqp.HeaderReason:     "exhausted",
		amqp.HeaderAttempt:    int32(3),
		amqp.HeaderRoutingKey: "Poison",
		amqp.HeaderExchange:   b.exchange,
		amqp.HeaderLastError:  "downstream said no (attempt 3)",
		amqp.HeaderApp:        w.Queue()[len("events_"):],
		"aggregate_id":        "agg-1",
	} {
		if h[k] != want {
			t.Errorf("header %s = %v (%T), want %v", k, h[k], h[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(h[amqp.HeaderFirstFailure])); err != nil {
		t.Errorf("first failure header: %v", err)
	}
	if d.MessageId != ids[0] || string(d.Body) != `{"n":1}` || d.Type != "Poison" {
		t.Errorf("dead letter lost its identity: id %q type %q body %s", d.MessageId, d.Type, d.Body)
	}
	if brokertest.Depth(t, w.Queue()) != 0 {
		t.Error("app queue not empty")
	}
}

func TestWorker_PermanentPanicTimeoutAndUndecodable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := event.NewRegistry().
		OnFunc("Permanent", func(context.Context, event.Event) error {
			return retry.Permanent(errors.New("bad card"))
		}).
		OnFunc("Panics", func(_ context.Context, e event.Event) error {
			if e.Attempt == 1 {
				panic("boom")
			}
			return nil
		}).
		OnFunc("Slow", func(ctx context.Context, e event.Event) error {
			if e.Attempt == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}).
		On("Ignores", blockingHandler(t))
	w := b.worker(t, amqp.WorkerConfig{Retry: fast, HandlerTimeout: 300 * time.Millisecond}, h)
	if got := strings.Join(w.Bindings(), ","); got != "Ignores,Panics,Permanent,Slow" {
		t.Fatalf("registry without catch-all must bind its types, got %s", got)
	}
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("Permanent", "", 1), ev("Panics", "", 2), ev("Slow", "", 3), ev("Ignores", "", 4))
	// Foreign publisher: not JSON.
	rawPublish(t, b.exchange, "Permanent", amqp091.Publishing{Body: []byte("<xml/>")})

	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 20*time.Second, "3 dead letters", func() bool { return brokertest.Depth(t, dead) == 3 })
	brokertest.Eventually(t, 20*time.Second, "panic and timeout retried and handled", func() bool {
		return w.Stats().Handled == 2
	})
	reasons := map[string]string{}
	for _, d := range brokertest.Drain(t, dead, 3, time.Second) {
		reasons[fmt.Sprint(d.Headers[amqp.HeaderRoutingKey])+"/"+fmt.Sprint(d.Headers[amqp.HeaderReason])] =
			fmt.Sprint(d.Headers[amqp.HeaderLastError])
	}
	for _, want := range []string{"Permanent/permanent", "Permanent/undecodable", "Ignores/exhausted"} {
		if _, ok := reasons[want]; !ok {
			t.Errorf("no dead letter %s; got %v", want, reasons)
		}
	}
	if msg := reasons["Permanent/undecodable"]; !strings.Contains(msg, "not valid JSON") {
		t.Errorf("undecodable reason %q does not say why", msg)
	}
	if msg := reasons["Ignores/exhausted"]; !strings.Contains(msg, "timed out") {
		t.Errorf("timeout reason %q does not say so", msg)
	}
}

// blockingHandler ignores its context for a while, like a handler stuck in a
// call without a timeout. It returns when the test ends at the latest, so no
// abandoned handler outlives the test (goleak checks).
func blockingHandler(t *testing.T) event.Handler {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return event.HandlerFunc(func(context.Context, event.Event) error {
		select {
		case <-time.After(time.Second):
		case <-done:
		}
		return nil
	})
}

func TestWorker_RetryComesBackToThisAppOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	failing := newRecorder(func(e event.Event) error {
		if e.Attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	other := newRecorder(nil)
	b.worker(t, amqp.WorkerConfig{Retry: fast}, failing)
	b.worker(t, amqp.WorkerConfig{Retry: fast}, other)
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("Shared", "", 1))
	brokertest.Eventually(t, 20*time.Second, "third attempt", func() bool { return failing.count(ids[0]) == 3 })
	time.Sleep(300 * time.Millisecond) // negative check: would a wrongly routed copy follow?
	if n := other.count(ids[0]); n != 1 {
		t.Fatalf("the other app saw the event %d times, want 1", n)
	}
}

func TestWorker_ForeignMessageGetsTypeAndStableID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder(func(e event.Event) error {
		if e.Attempt == 1 {
			return errors.New("retry once")
		}
		return nil
	})
	b.worker(t, amqp.WorkerConfig{Retry: fast}, rec)
	// amqplib: routing key and body only.
	rawPublish(t, b.exchange, "CardAddedToLibraryEvent", amqp091.Publishing{Body: []byte(`{"cardId":"c1"}`)})
	brokertest.Eventually(t, 20*time.Second, "two attempts", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.order) == 2
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.order[0] != rec.order[1] {
		t.Fatalf("redelivery changed the id: %q then %q", rec.order[0], rec.order[1])
	}
	e := rec.seen[rec.order[0]][1]
	if e.Type != "CardAddedToLibraryEvent" || e.Attempt != 2 || e.ID == "" {
		t.Fatalf("foreign event decoded as %+v", e)
	}
}

func TestWorker_EventTypesBindOnlyThose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder(nil)
	b.worker(t, amqp.WorkerConfig{EventTypes: []string{"Wanted", "Also.*"}}, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("Wanted", "", 1), ev("Unwanted", "", 2), ev("Also.This", "", 3))
	brokertest.Eventually(t, 10*time.Second, "wanted events", func() bool { return rec.distinct() == 2 })
	if rec.count(ids[1]) != 0 {
		t.Fatal("unbound type delivered")
	}
	if n := brokertest.Depth(t, amqp.UnroutedQueue(b.exchange)); n != 1 {
		t.Fatalf("unrouted queue holds %d, want the 1 unbound event", n)
	}
}

func TestWorker_GracefulStopFinishesInflightHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{}, 1)
	var finished atomic.Bool
	h := event.HandlerFunc(func(ctx context.Context, _ event.Event) error {
		started <- struct{}{}
		time.Sleep(500 * time.Millisecond) // the handler's work, still running when Stop is called
		finished.Store(true)
		return ctx.Err()
	})
	w := b.worker(t, amqp.WorkerConfig{}, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("Slow", "", 1))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() || w.Stats().Handled != 1 {
		t.Fatalf("in-flight handler not finished and acked: finished=%v stats=%+v", finished.Load(), w.Stats())
	}
	if d := brokertest.Depth(t, w.Queue()); d != 0 {
		t.Fatalf("queue holds %d after graceful stop, want 0", d)
	}
}

// TestWorker_HardStopReturnsUnfinishedToQueue: when Stop's context ends
// before the running handler does, Stop returns then, the Worker is done, and
// the delivery goes back to the queue unsettled, whether the handler returns
// once its context is cancelled or ignores it.
func TestWorker_HardStopReturnsUnfinishedToQueue(t *testing.T) {
	t.Parallel()
	honours := func(_ *testing.T, started chan<- struct{}) event.Handler {
		return event.HandlerFunc(func(ctx context.Context, _ event.Event) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})
	}
	ignores := func(t *testing.T, started chan<- struct{}) event.Handler {
		inner := blockingHandler(t)
		return event.HandlerFunc(func(ctx context.Context, e event.Event) error {
			started <- struct{}{}
			return inner.Handle(ctx, e)
		})
	}
	for name, handler := range map[string]func(*testing.T, chan<- struct{}) event.Handler{
		"handler honours its context": honours,
		"handler ignores its context": ignores,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			started := make(chan struct{}, 1)
			w := b.worker(t, amqp.WorkerConfig{HandlerTimeout: time.Minute}, handler(t, started))
			p := b.publisher(t, amqp.PublisherConfig{})
			publishAll(t, p, ev("Stuck", "", 1))
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := w.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Stop = %v, want DeadlineExceeded", err)
			}
			select {
			case <-w.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("worker not done after a hard stop: it waits for the handler")
			}
			brokertest.Eventually(t, 10*time.Second, "message back in queue", func() bool { return brokertest.Depth(t, w.Queue()) == 1 })
			if n := brokertest.Depth(t, amqp.DeadQueue(w.Queue())); n != 0 {
				t.Fatalf("hard stop dead-lettered %d", n)
			}
			if st := w.Stats(); st != (amqp.Stats{}) {
				t.Fatalf("stats %+v after a hard stop, want none settled", st)
			}
		})
	}
}

// TestWorker_AbandonedNoEarlierThanItsLimit: a handler loop's watchdog timer
// is set by an earlier call; a stuck call that starts later must still get
// its whole limit (HandlerTimeout + a tenth) from its own start, and then be
// abandoned.
func TestWorker_AbandonedNoEarlierThanItsLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{}) // the stuck handler returns when the test ends
	t.Cleanup(func() { close(release) })
	quick := make(chan struct{}, 1)
	var stuckAt atomic.Int64
	next := make(chan time.Time, 1)
	h := event.NewRegistry().
		OnFunc("Quick", func(context.Context, event.Event) error { quick <- struct{}{}; return nil }).
		OnFunc("Stuck", func(context.Context, event.Event) error {
			stuckAt.Store(time.Now().UnixNano())
			<-release // ignores its context
			return nil
		}).
		OnFunc("Next", func(context.Context, event.Event) error { next <- time.Now(); return nil })
	const timeout = 400 * time.Millisecond
	w := b.worker(t, amqp.WorkerConfig{Concurrency: 1, Prefetch: 1, HandlerTimeout: timeout,
		Retry: retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 1}}, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("Quick", "", 1))
	<-quick // the loop's timer is set now, for the quick call's limit
	time.Sleep(timeout / 2)
	publishAll(t, p, ev("Stuck", "", 2), ev("Next", "", 3))
	select {
	case at := <-next:
		limit := timeout + timeout/10
		if ran := at.Sub(time.Unix(0, stuckAt.Load())); ran < limit {
			t.Fatalf("the stuck handler was abandoned %v after it started, before its limit %v", ran, limit)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck handler was never abandoned")
	}
	if dead := brokertest.Drain(t, amqp.DeadQueue(w.Queue()), 1, 5*time.Second); len(dead) != 1 {
		t.Fatalf("%d dead letters, want the abandoned event", len(dead))
	}
}

// TestWorker_TimeoutHonouredByHandler: a handler that returns as soon as its
// context ends settles its own delivery: the error it returned is the one
// recorded, not the "ignored its context" of an abandoned call.
func TestWorker_TimeoutHonouredByHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := event.HandlerFunc(func(ctx context.Context, _ event.Event) error {
		<-ctx.Done()
		return fmt.Errorf("gave up: %w", ctx.Err())
	})
	w := b.worker(t, amqp.WorkerConfig{HandlerTimeout: 500 * time.Millisecond,
		Retry: retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 1}}, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("Slow", "", 1))
	dead := brokertest.Drain(t, amqp.DeadQueue(w.Queue()), 1, 10*time.Second)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	msg := fmt.Sprint(dead[0].Headers[amqp.HeaderLastError])
	if !strings.Contains(msg, "handler timed out after 500ms: gave up: context deadline exceeded") {
		t.Errorf("dead letter's last error %q, want the handler's own error after the timeout", msg)
	}
}

func TestWorker_ReconnectsAfterConnectionCut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	proxy := brokertest.NewProxy(t)
	rec := newRecorder(nil)
	w := b.worker(t, amqp.WorkerConfig{URL: proxy.URL(t), Retry: fast}, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	first := publishAll(t, p, ev("Before", "", 1))
	brokertest.Eventually(t, 10*time.Second, "first event", func() bool { return rec.count(first[0]) == 1 })
	proxy.Cut()
	brokertest.Eventually(t, 10*time.Second, "worker noticed the cut", func() bool { return !w.Consuming() })
	second := publishAll(t, p, ev("After", "", 2))
	brokertest.Eventually(t, 20*time.Second, "event after reconnect", func() bool { return rec.count(second[0]) == 1 })
}

func TestWorker_QueueDeletedUnderIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder(nil)
	w := b.worker(t, amqp.WorkerConfig{}, rec)
	ch := brokertest.Channel(t)
	if _, err := ch.QueueDelete(w.Queue(), false, false, false); err != nil {
		t.Fatal(err)
	}
	// The worker must notice (consumer cancel), declare the queue again and
	// consume from it.
	brokertest.Eventually(t, 15*time.Second, "queue re-declared", func() bool { return brokertest.Depth(t, w.Queue()) == 0 && w.Consuming() })
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("AfterDelete", "", 1))
	brokertest.Eventually(t, 15*time.Second, "event after re-declare", func() bool { return rec.count(ids[0]) == 1 })
}

func TestWorker_TopologyMismatchIsFatalWithAHint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := brokertest.Name(t)
	b.cleanupApp(t, app, retry.Policy{})
	ch := brokertest.Channel(t)
	if _, err := ch.QueueDeclare(amqp.AppQueue(app), true, false, false, false,
		amqp091.Table{"x-queue-type": "classic", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": amqp.AppQueue(app) + ".dead"}); err != nil {
		t.Fatal(err)
	}
	w, err := amqp.NewWorker(amqp.WorkerConfig{URL: b.url, Exchange: b.exchange, App: app, Logger: b.log}, newRecorder(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	select {
	case <-w.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop on a topology mismatch")
	}
	err = w.Err()
	if !errors.Is(err, amqp.ErrTopologyMismatch) {
		t.Fatalf("Err() = %v, want ErrTopologyMismatch", err)
	}
	// The broker names the first argument that differs (x-overflow here, a
	// quorum-only argument); the hint must point at the setting behind it.
	for _, want := range []string{amqp.AppQueue(app), "argument \"x-", "QUEUE_TYPE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestQuorumDeliveryLimitStopsCrashLoops(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := brokertest.Name(t)
	// A worker declares the topology; stop it so a raw consumer can play a
	// worker that crashes on the message every time.
	w := b.worker(t, amqp.WorkerConfig{App: app, DeliveryLimit: 3}, newRecorder(nil))
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("CrashesWorker", "", 1))
	ch := brokertest.Channel(t)
	for i := 0; ; i++ {
		d, ok, err := ch.Get(w.Queue(), false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if brokertest.Depth(t, amqp.DeadQueue(w.Queue())) == 1 {
				break
			}
			if i > 200 {
				t.Fatal("message neither redelivered nor dead-lettered")
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if i > 10 {
			t.Fatalf("delivered %d times despite a delivery limit of 3", i+1)
		}
		_ = d.Nack(false, true) // "crash": back to the queue
	}
	d := brokertest.Drain(t, amqp.DeadQueue(w.Queue()), 1, time.Second)[0]
	deaths, _ := d.Headers["x-death"].([]any)
	if len(deaths) == 0 || !strings.Contains(fmt.Sprint(deaths[0]), "delivery_limit") {
		t.Fatalf("x-death = %v, want reason delivery_limit", d.Headers["x-death"])
	}
}

func TestNewWorker_RejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := newRecorder(nil)
	for name, cfg := range map[string]amqp.WorkerConfig{
		"no app":          {},
		"space in app":    {App: "a b"},
		"bad queue type":  {App: "a", QueueType: "stream"},
		"*Event binding":  {App: "a", EventTypes: []string{"*Event"}},
		"tiny delay":      {App: "a", Retry: retry.Policy{Delays: []time.Duration{time.Millisecond}}},
		"zero concurrent": {App: "a", Concurrency: -1},
	} {
		if _, err := amqp.NewWorker(cfg, h); !errors.Is(err, amqp.ErrInvalidConfig) {
			t.Errorf("%s: NewWorker = %v, want ErrInvalidConfig", name, err)
		}
	}
	_, err := amqp.NewWorker(amqp.WorkerConfig{App: "a", EventTypes: []string{"*Event"}}, h)
	if err == nil || !strings.Contains(err.Error(), "whole dot-separated words") {
		t.Fatalf("*Event error does not explain: %v", err)
	}
}

// A session starts with prefetch 1 (cautious start) and must open its full
// window at the first fresh delivery; a worker stuck at prefetch 1 would run
// one handler at a time (found by the long chaos run: 6k of 20k events
// handled in 80s).
func TestWorker_RunsHandlersConcurrentlyAfterCautiousStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var running, peak atomic.Int32
	release := make(chan struct{})
	h := event.HandlerFunc(func(ctx context.Context, _ event.Event) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		running.Add(-1)
		return nil
	})
	w := b.worker(t, amqp.WorkerConfig{Concurrency: 8, Prefetch: 32}, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	evs := make([]event.Event, 40)
	for i := range evs {
		evs[i] = ev("Parallel", "", i)
	}
	publishAll(t, p, evs...)
	brokertest.Eventually(t, 10*time.Second, "8 handlers running at once", func() bool { return peak.Load() == 8 })
	close(release)
	brokertest.Eventually(t, 10*time.Second, "all handled", func() bool { return w.Stats().Handled == 40 })
}

// TestWorker_AbandonedHandlerKeepsItsSlot: with one handler slot, a handler
// that ignores its context forever must not stop the worker. The event is
// moved on at the timeout, the next event is handled by a loop started in
// the stuck one's place, and Stop does not wait for the stuck handler.
func TestWorker_AbandonedHandlerKeepsItsSlot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	next := make(chan string, 1)
	h := event.NewRegistry().
		OnFunc("Stuck", func(context.Context, event.Event) error {
			<-release // ignores its context
			return nil
		}).
		OnFunc("Next", func(_ context.Context, e event.Event) error {
			next <- e.ID
			return nil
		})
	w := b.worker(t, amqp.WorkerConfig{Concurrency: 1, Prefetch: 1, HandlerTimeout: 200 * time.Millisecond,
		Retry: retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 1}}, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("Stuck", "", 1), ev("Next", "", 2))
	select {
	case id := <-next:
		if id != ids[1] {
			t.Fatalf("handled %s, want %s", id, ids[1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the next event was not handled while the first handler is stuck: its slot was lost")
	}
	dead := brokertest.Drain(t, amqp.DeadQueue(w.Queue()), 1, time.Second)
	if msg := fmt.Sprint(dead[0].Headers[amqp.HeaderLastError]); !strings.Contains(msg, "ignored its context") {
		t.Errorf("dead letter's last error %q does not say the handler ignored its context", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop with a handler still stuck: %v after %v", err, time.Since(start))
	}
	if st := w.Stats(); st.Handled != 1 || st.DeadLettered != 1 {
		t.Errorf("stats %+v, want 1 handled and 1 dead-lettered", st)
	}
	once.Do(func() { close(release) })
}
