package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// The tests below run against the real broker, each with its own app and
// exchange.

// fastRetry makes a failing handler dead-letter an event within ~100 ms.
var fastRetry = retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2}

// fixture is one test's app: names, a connection for the Inspector and a
// confirm-mode channel for seeding.
type fixture struct {
	t        testing.TB
	app      string
	exchange string
	queue    string // events_<app>
	dead     string // events_<app>.dead
	unrouted string
	conn     *amqp091.Connection
	ch       *amqp091.Channel
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, app: brokertest.Name(t), exchange: brokertest.Name(t)}
	f.queue = amqp.AppQueue(f.app)
	f.dead = amqp.DeadQueue(f.queue)
	f.unrouted = amqp.UnroutedQueue(f.exchange)
	queues := []string{f.queue, f.dead, f.unrouted}
	for _, d := range fastRetry.Stages() {
		queues = append(queues, amqp.RetryQueue(f.queue, d))
	}
	brokertest.Cleanup(t, queues, []string{f.exchange, amqp.HopsExchange(f.queue)})
	conn, err := amqp091.Dial(brokertest.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f.conn = conn
	f.ch = brokertest.Channel(t)
	if err := f.ch.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	return f
}

// publisher is a started Publisher for the Inspector's replays, stopped when
// the test ends.
func (f *fixture) publisher() *amqp.Publisher {
	f.t.Helper()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(f.t), Exchange: f.exchange, Name: "deadletter-test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(c)
	})
	return p
}

// forApp and forUnrouted are the Inspectors of the test's queues, with a
// Publisher to replay.
func (f *fixture) forApp() *deadletter.Inspector {
	in := deadletter.ForApp(f.conn, f.queue)
	in.Publisher = f.publisher()
	return in
}

func (f *fixture) forUnrouted() *deadletter.Inspector {
	in := deadletter.ForUnrouted(f.conn, f.unrouted, f.exchange)
	in.Publisher = f.publisher()
	return in
}

// declare makes the dead-letter queue, a plain app queue and the app's
// exchange bound to it (replays go there), for tests that run no worker (a
// worker would declare the app queue with its arguments).
func (f *fixture) declare() {
	f.t.Helper()
	for _, q := range []string{f.dead, f.queue} {
		if _, err := f.ch.QueueDeclare(q, true /* durable */, false, false, false,
			amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
			f.t.Fatal(err)
		}
	}
	f.bindHops()
}

// bindHops declares the app's exchange and binds the app queue to it, as a
// worker does.
func (f *fixture) bindHops() {
	f.t.Helper()
	hops := amqp.HopsExchange(f.queue)
	if err := f.ch.ExchangeDeclare(hops, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		f.t.Fatal(err)
	}
	if err := f.ch.QueueBind(f.queue, f.queue, hops, false, nil); err != nil {
		f.t.Fatal(err)
	}
}

// dl is a dead letter as a worker writes it.
type dl struct {
	id, typ, aggregate string
	reason             amqp.Reason
	attempt            int32
	deadAt             time.Time // zero: now
	body               string    // zero: {"n":<index>}
}

// seed publishes dead letters straight into the dead-letter queue, confirmed,
// in order.
func (f *fixture) seed(msgs ...dl) {
	f.t.Helper()
	var pubs []amqp091.Publishing
	for i, m := range msgs {
		at := m.deadAt
		if at.IsZero() {
			at = time.Now()
		}
		reason := m.reason
		if reason == "" {
			reason = amqp.ReasonExhausted
		}
		h := amqp091.Table{amqp.HeaderRoutingKey: m.typ, amqp.HeaderExchange: f.exchange,
			amqp.HeaderAttempt: m.attempt}
		if m.aggregate != "" {
			h[amqp.HeaderAggregateID] = m.aggregate
		}
		amqp.MarkDead(h, reason, f.app, "handler failed on "+m.id, at)
		body := m.body
		if body == "" {
			body = fmt.Sprintf(`{"n":%d}`, i)
		}
		pubs = append(pubs, amqp091.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp091.Persistent,
			MessageId: m.id, Type: m.typ, AppId: "test", Timestamp: at, Body: []byte(body)})
	}
	f.publish("", f.dead, pubs...)
}

func (f *fixture) publish(exchange, key string, pubs ...amqp091.Publishing) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dcs []*amqp091.DeferredConfirmation
	for _, p := range pubs {
		dc, err := f.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
		if err != nil {
			f.t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			f.t.Fatalf("seed not confirmed: %v %v", ok, err)
		}
	}
}

// ids drains queue (removing everything) and returns the message ids in
// queue order.
func ids(t *testing.T, queue string, want int) []string {
	t.Helper()
	var out []string
	for _, d := range brokertest.Drain(t, queue, want, 300*time.Millisecond) {
		out = append(out, d.MessageId)
	}
	return out
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func messageIDs(ms []deadletter.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestQuorumQueue_ReturnOrder pins the broker behaviour every operation
// relies on (RabbitMQ 3.10.8, quorum queue): the deliveries a channel holds
// unacknowledged go back, in their order, when the channel closes, to the end
// of the queue's list of returned messages, which is delivered before every
// message never delivered. With that list empty that is the head of the
// queue; with part of it undelivered, behind that part (which is why an
// operation takes delivery of the whole list before it closes). A nack with
// requeue moves messages to the tail of the queue, so operations never nack.
func TestQuorumQueue_ReturnOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	var pubs []amqp091.Publishing
	for _, id := range seq("m", 12) {
		pubs = append(pubs, amqp091.Publishing{MessageId: id, DeliveryMode: amqp091.Persistent})
	}
	hold := func(n int, ack ...int) (*amqp091.Channel, []amqp091.Delivery) {
		ch, err := f.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Qos(n, 0, false); err != nil {
			t.Fatal(err)
		}
		ds, err := ch.Consume(f.dead, "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		var held []amqp091.Delivery
		for i := range n {
			d := <-ds
			if slices.Contains(ack, i) {
				_ = d.Ack(false)
				continue
			}
			held = append(held, d)
		}
		return ch, held
	}

	f.publish("", f.dead, pubs...)
	ch, _ := hold(6, 1, 4) // hold m0..m5, remove m1 and m4
	_ = ch.Close()
	got := ids(t, f.dead, 10)
	if want := slices.Concat([]string{"m0", "m2", "m3", "m5"}, seq("m", 12)[6:]); !slices.Equal(got, want) {
		t.Errorf("after closing a channel that held m0..m5 (m1, m4 acked): %v, want %v", got, want)
	}

	f.publish("", f.dead, pubs...)
	ch, held := hold(4)
	_ = held[len(held)-1].Nack(true /* multiple */, true /* requeue */)
	_ = ch.Close()
	got = ids(t, f.dead, 12)
	if want := slices.Concat(seq("m", 12)[4:], seq("m", 4)); !slices.Equal(got, want) {
		t.Errorf("after nack-requeue of m0..m3: %v, want them at the tail %v (if this changed, the broker changed)", got, want)
	}

	f.publish("", f.dead, pubs...)
	ch, _ = hold(8) // m0..m7 become the returned list
	_ = ch.Close()
	brokertest.Eventually(t, 5*time.Second, "returned", func() bool { return brokertest.Depth(t, f.dead) == 12 })
	ch, _ = hold(2) // m0, m1 return behind m2..m7
	_ = ch.Close()
	brokertest.Eventually(t, 5*time.Second, "returned", func() bool { return brokertest.Depth(t, f.dead) == 12 })
	got = ids(t, f.dead, 12)
	if want := slices.Concat(seq("m", 8)[2:], seq("m", 2), seq("m", 12)[8:]); !slices.Equal(got, want) {
		t.Errorf("returning m0, m1 while m2..m7 were returned earlier: %v, want %v (if this changed, the broker changed)", got, want)
	}
}

func TestPeek_LeavesOrderAndRaisesDeliveryCount(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	var seeds []dl
	for i := range 6 {
		typ := "AEvent"
		if i%2 == 1 {
			typ = "BEvent"
		}
		seeds = append(seeds, dl{id: fmt.Sprintf("ev-%d", i), typ: typ, aggregate: "agg-1", attempt: 3})
	}
	seeds[5].reason = amqp.ReasonPermanent
	f.seed(seeds...)
	in := f.forApp()

	first, err := in.Peek(ctx(t), deadletter.PeekOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(first.Messages); !slices.Equal(got, []string{"ev-0", "ev-1"}) || first.Depth != 6 || first.Scanned != 2 {
		t.Fatalf("Peek limit 2: %v (depth %d, scanned %d)", got, first.Depth, first.Scanned)
	}
	m := first.Messages[0]
	if m.Type != "AEvent" || m.AggregateID != "agg-1" || m.Reason != amqp.ReasonExhausted || m.Attempts != 3 ||
		m.LastError != "handler failed on ev-0" || m.App != f.app || m.Time.IsZero() || string(m.Body) != `{"n":0}` ||
		m.Deliveries != 0 || m.Exchange != f.exchange {
		t.Errorf("first message %+v", m)
	}

	typed, err := in.Peek(ctx(t), deadletter.PeekOptions{Filter: deadletter.Filter{Type: "BEvent"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(typed.Messages); !slices.Equal(got, []string{"ev-1", "ev-3", "ev-5"}) || typed.Scanned != 6 {
		t.Errorf("Peek type BEvent: %v (scanned %d)", got, typed.Scanned)
	}

	all, err := in.Peek(ctx(t), deadletter.PeekOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, m := range all.Messages {
		counts = append(counts, m.Deliveries)
	}
	// Every operation takes delivery of the whole queue (see Inspector),
	// so each peek raised every count, also the one limited to 2.
	if got := messageIDs(all.Messages); !slices.Equal(got, seq("ev-", 6)) || !slices.Equal(counts, []int{2, 2, 2, 2, 2, 2}) {
		t.Errorf("after two peeks: %v with delivery counts %v, want the seed order and [2 2 2 2 2 2]", got, counts)
	}
	if got := ids(t, f.dead, 6); !slices.Equal(got, seq("ev-", 6)) {
		t.Errorf("queue after peeks: %v, want %v", got, seq("ev-", 6))
	}
}

func TestList_CountsByTypeAndReasonWithBrokerDeadLetters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// An app queue with a delivery limit of 1, dead-lettering to the dead
	// queue, so the broker itself dead-letters a message that is returned
	// twice (a crash loop).
	if _, err := f.ch.QueueDeclare(f.dead, true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ch.QueueDeclare(f.queue, true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum,
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f.dead, "x-delivery-limit": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if err := f.ch.ExchangeDeclare(f.exchange, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.ch.QueueBind(f.queue, "#", f.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
	f.seed(dl{id: "a1", typ: "AEvent", attempt: 5, deadAt: old}, dl{id: "a2", typ: "AEvent", attempt: 5},
		dl{id: "b1", typ: "BEvent", reason: amqp.ReasonPermanent, attempt: 1},
		dl{id: "c1", typ: "CEvent", reason: amqp.ReasonUndecodable, attempt: 1, body: "not json"})
	// A foreign message: no message_id, no type property.
	published := time.Now().Truncate(time.Second)
	f.publish(f.exchange, "CrashEvent", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Timestamp: published, Body: []byte(`{}`)})
	brokertest.Eventually(t, 15*time.Second, "the broker dead-letters the crash loop", func() bool {
		ch, err := f.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_ = ch.Qos(1, 0, false)
		ds, err := ch.Consume(f.queue, "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		select { // take it and "crash": closing returns it
		case <-ds:
		case <-time.After(200 * time.Millisecond):
		}
		_ = ch.Close()
		return brokertest.Depth(t, f.dead) == 5
	})

	in := f.forApp()
	sum, err := in.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]int{"AEvent": 2, "BEvent": 1, "CEvent": 1, "CrashEvent": 1}
	wantReasons := map[amqp.Reason]int{amqp.ReasonExhausted: 2, amqp.ReasonPermanent: 1,
		amqp.ReasonUndecodable: 1, deadletter.ReasonDeliveryLimit: 1}
	if sum.Scanned != 5 || sum.Depth != 5 || sum.Incomplete || fmt.Sprint(sum.ByType) != fmt.Sprint(wantTypes) ||
		fmt.Sprint(sum.ByReason) != fmt.Sprint(wantReasons) {
		t.Errorf("List = %+v\nwant types %v reasons %v", sum, wantTypes, wantReasons)
	}
	if !sum.Oldest.Equal(old) || sum.Newest.Before(published.Add(-time.Second)) {
		t.Errorf("oldest %v newest %v, want %v and about now", sum.Oldest, sum.Newest, old)
	}
	res, err := in.Peek(ctx(t), deadletter.PeekOptions{Filter: deadletter.Filter{Type: "CrashEvent"}})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("Peek CrashEvent: %v, %v", res.Messages, err)
	}
	if m := res.Messages[0]; m.ID == "" || m.Exchange != f.exchange || m.RoutingKey != "CrashEvent" || m.Time.IsZero() {
		t.Errorf("broker dead letter read as %+v", m)
	}
	if got := ids(t, f.dead, 5); !slices.Equal(got[:4], []string{"a1", "a2", "b1", "c1"}) {
		t.Errorf("order after List and Peek: %v", got)
	}
}

func TestReplay_TypeFilterReplaysThoseAndKeepsTheRestInOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	var seeds []dl
	for i := range 8 {
		typ := "AEvent"
		if i%2 == 1 {
			typ = "BEvent"
		}
		seeds = append(seeds, dl{id: fmt.Sprintf("ev-%d", i), typ: typ, aggregate: "agg", attempt: 5})
	}
	f.seed(seeds...)
	in := f.forApp()
	var reported []string
	res, err := in.Replay(ctx(t), deadletter.ReplayOptions{Filter: deadletter.Filter{Type: "AEvent"},
		OnMessage: func(r deadletter.ReplayedMessage) { reported = append(reported, string(r.Outcome)+" "+r.Message.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 4 || res.Kept != 0 || res.Scanned != 8 {
		t.Errorf("result %+v", res)
	}
	if want := []string{"replayed ev-0", "replayed ev-2", "replayed ev-4", "replayed ev-6"}; !slices.Equal(reported, want) {
		t.Errorf("reported %v, want %v", reported, want)
	}
	replayed := brokertest.Drain(t, f.queue, 4, 300*time.Millisecond)
	var got []string
	for _, d := range replayed {
		got = append(got, d.MessageId)
		for _, h := range []string{amqp.HeaderAttempt, amqp.HeaderReason, amqp.HeaderDeadAt,
			amqp.HeaderLastError, amqp.HeaderFirstFailure, amqp.HeaderApp, "x-death"} {
			if v, ok := d.Headers[h]; ok {
				t.Errorf("replayed %s still has %s = %v", d.MessageId, h, v)
			}
		}
		if d.Headers[amqp.HeaderReplays] != int32(1) || d.Headers[amqp.HeaderRoutingKey] != "AEvent" ||
			d.Headers[amqp.HeaderExchange] != f.exchange || d.Headers[amqp.HeaderAggregateID] != "agg" ||
			d.Type != "AEvent" || d.ContentType != "application/json" {
			t.Errorf("replayed %s: type %q headers %v", d.MessageId, d.Type, d.Headers)
		}
	}
	if want := []string{"ev-0", "ev-2", "ev-4", "ev-6"}; !slices.Equal(got, want) {
		t.Errorf("app queue %v, want %v", got, want)
	}
	if got, want := ids(t, f.dead, 4), []string{"ev-1", "ev-3", "ev-5", "ev-7"}; !slices.Equal(got, want) {
		t.Errorf("dead-letter queue %v, want %v", got, want)
	}
}

// TestReplay_IDAndLimit also checks that operations in a row keep the order.
func TestReplay_IDAndLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	var seeds []dl
	for _, id := range seq("ev-", 6) {
		seeds = append(seeds, dl{id: id, typ: "AEvent"})
	}
	f.seed(seeds...)
	in := f.forApp()
	// Each step puts back what it read and did not replay; the next one
	// must still find the queue in order (see scan.finish).
	if _, err := in.List(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if res, err := in.Peek(ctx(t), deadletter.PeekOptions{Limit: 1}); err != nil || len(res.Messages) != 1 || res.Messages[0].ID != "ev-0" {
		t.Fatalf("peek --limit 1: %+v, %v", res, err)
	}
	if res, err := in.Replay(ctx(t), deadletter.ReplayOptions{Filter: deadletter.Filter{ID: "ev-3"}}); err != nil || res.Replayed != 1 {
		t.Fatalf("replay --id: %+v, %v", res, err)
	}
	if res, err := in.Replay(ctx(t), deadletter.ReplayOptions{Limit: 2}); err != nil || res.Replayed != 2 {
		t.Fatalf("replay --limit 2: %+v, %v", res, err)
	}
	if got, want := ids(t, f.queue, 3), []string{"ev-3", "ev-0", "ev-1"}; !slices.Equal(got, want) {
		t.Errorf("app queue %v, want %v", got, want)
	}
	if got, want := ids(t, f.dead, 3), []string{"ev-2", "ev-4", "ev-5"}; !slices.Equal(got, want) {
		t.Errorf("dead-letter queue %v, want %v", got, want)
	}
}

func TestReplay_DryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	var seeds []dl
	for i, id := range seq("ev-", 5) {
		seeds = append(seeds, dl{id: id, typ: []string{"AEvent", "BEvent"}[i%2]})
	}
	f.seed(seeds...)
	in := f.forApp()
	var would []string
	res, err := in.Replay(ctx(t), deadletter.ReplayOptions{DryRun: true, Filter: deadletter.Filter{Type: "AEvent"},
		OnMessage: func(r deadletter.ReplayedMessage) {
			if r.Outcome != deadletter.OutcomeDryRun {
				t.Errorf("dry run outcome %q", r.Outcome)
			}
			would = append(would, r.Message.ID)
		}})
	if err != nil || res.Replayed != 3 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if !slices.Equal(would, []string{"ev-0", "ev-2", "ev-4"}) {
		t.Errorf("dry run would replay %v", would)
	}
	if n := brokertest.Depth(t, f.queue); n != 0 {
		t.Errorf("dry run put %d messages into %s", n, f.queue)
	}
	if got := ids(t, f.dead, 5); !slices.Equal(got, seq("ev-", 5)) {
		t.Errorf("dead-letter queue after a dry run: %v, want %v", got, seq("ev-", 5))
	}
}

// recorder is a handler that fails while failing is set and records every
// call.
type recorder struct {
	failing atomic.Bool
	mu      sync.Mutex
	calls   []event.Event
}

func (r *recorder) Handle(_ context.Context, ev event.Event) error {
	r.mu.Lock()
	r.calls = append(r.calls, ev)
	r.mu.Unlock()
	if r.failing.Load() {
		return errors.New("poison: " + strings.Repeat("x", 2000)) // longer than MaxErrorLen
	}
	return nil
}

func (r *recorder) attempts(id string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, ev := range r.calls {
		if ev.ID == id {
			out = append(out, ev.Attempt)
		}
	}
	return out
}

func (f *fixture) worker(h event.Handler) *amqp.Worker {
	f.t.Helper()
	w := workertest.Start(f.t, amqp.WorkerConfig{URL: brokertest.URL(f.t), Exchange: f.exchange, App: f.app, Retry: fastRetry,
		Concurrency: 2, Backoff: retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, h)
	workertest.WaitReady(f.t, w, 30*time.Second)
	return w
}

// TestReplay_DieReplayCyclesThenHandlerSucceeds runs a real worker whose
// handler fails: the event dies, is replayed, dies again, three times, with
// headers that do not grow; then the handler is fixed and one more replay
// has it handled once, as attempt 1.
func TestReplay_DieReplayCyclesThenHandlerSucceeds(t *testing.T) {
	t.Parallel()
	f := setup(t)
	h := &recorder{}
	h.failing.Store(true)
	f.worker(h)
	f.publish(f.exchange, "OrderPlacedEvent", amqp091.Publishing{MessageId: "poison-1", Type: "OrderPlacedEvent",
		ContentType: "application/json", DeliveryMode: amqp091.Persistent, Timestamp: time.Now(), Body: []byte(`{"total":42}`)})
	in := f.forApp()

	var sizes []string
	for cycle := range 4 {
		brokertest.Eventually(t, 20*time.Second, fmt.Sprintf("dead letter in cycle %d", cycle), func() bool {
			return brokertest.Depth(t, f.dead) == 1
		})
		res, err := in.Peek(ctx(t), deadletter.PeekOptions{})
		if err != nil || len(res.Messages) != 1 {
			t.Fatalf("cycle %d: peek %v, %v", cycle, res.Messages, err)
		}
		m := res.Messages[0]
		if m.ID != "poison-1" || m.Replays != cycle || m.Attempts != 2 || m.Reason != amqp.ReasonExhausted ||
			len(m.LastError) > amqp.MaxErrorLen {
			t.Errorf("cycle %d: dead letter %+v", cycle, m)
		}
		var keys []string
		for k := range m.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		xd, _ := m.Headers["x-death"].([]any)
		sizes = append(sizes, fmt.Sprintf("%v x-death:%d", keys, len(xd)))
		if cycle == 3 {
			break
		}
		if rr, err := in.Replay(ctx(t), deadletter.ReplayOptions{}); err != nil || rr.Replayed != 1 {
			t.Fatalf("cycle %d: replay %+v, %v", cycle, rr, err)
		}
	}
	for i := 2; i < len(sizes); i++ {
		if sizes[i] != sizes[1] {
			t.Errorf("headers changed between cycles:\n1: %s\n%d: %s", sizes[1], i, sizes[i])
		}
	}
	if got := h.attempts("poison-1"); !slices.Equal(got, []int{1, 2, 1, 2, 1, 2, 1, 2}) {
		t.Errorf("attempts over four lives: %v", got)
	}

	h.failing.Store(false) // the handler is fixed
	if rr, err := in.Replay(ctx(t), deadletter.ReplayOptions{}); err != nil || rr.Replayed != 1 {
		t.Fatalf("final replay %+v, %v", rr, err)
	}
	brokertest.Eventually(t, 20*time.Second, "the replayed event handled", func() bool {
		return len(h.attempts("poison-1")) == 9
	})
	time.Sleep(300 * time.Millisecond) // would a second delivery follow?
	if got := h.attempts("poison-1"); !slices.Equal(got[8:], []int{1}) {
		t.Errorf("after the fix: attempts %v, want one more call as attempt 1", got)
	}
	for _, q := range []string{f.dead, f.queue} {
		if n := brokertest.Depth(t, q); n != 0 {
			t.Errorf("%d messages left in %s", n, q)
		}
	}
}

// TestReadMessage_IDMatchesWorker: a foreign message without message_id gets
// the id the worker derives and hands its handler.
func TestReadMessage_IDMatchesWorker(t *testing.T) {
	t.Parallel()
	f := setup(t)
	h := &recorder{}
	f.worker(h)
	ts := time.Now().Truncate(time.Second)
	p := amqp091.Publishing{AppId: "legacy", Timestamp: ts, Headers: amqp091.Table{amqp.HeaderAggregateID: "lib-7"}, Body: []byte(`{"card":7}`)}
	f.publish(f.exchange, "CardAddedToLibraryEvent", p)
	brokertest.Eventually(t, 20*time.Second, "the worker handles the event", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.calls) == 1
	})
	d := amqp091.Delivery{Exchange: f.exchange, RoutingKey: "CardAddedToLibraryEvent", AppId: p.AppId, Timestamp: ts,
		Headers: p.Headers, Body: p.Body}
	if got, want := deadletter.ReadMessage(&d, false).ID, h.calls[0].ID; got != want {
		t.Errorf("ReadMessage id %q, the worker's %q", got, want)
	}
}

func TestUnrouted_ReplayKeepsUnroutableAndDeliversOnceBound(t *testing.T) {
	t.Parallel()
	f := setup(t)
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(t), Exchange: f.exchange, AppID: "shop",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"NewEvent", "OtherEvent", "NewEvent"} {
		if err := pub.Publish(ctx(t), event.Event{ID: fmt.Sprintf("u-%d", i), Type: typ, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = pub.Stop(ctx(t))
	in := f.forUnrouted()
	sum, err := in.List(ctx(t))
	if err != nil || sum.Scanned != 3 || sum.ByReason[deadletter.ReasonUnrouted] != 3 || sum.ByType["NewEvent"] != 2 {
		t.Fatalf("List: %+v, %v", sum, err)
	}

	// Nothing is bound yet: the replay is returned, everything stays.
	res, err := in.Replay(ctx(t), deadletter.ReplayOptions{Filter: deadletter.Filter{Type: "NewEvent"}})
	if !errors.Is(err, amqp.ErrReturned) || res.Kept != 2 || res.Replayed != 0 {
		t.Fatalf("replay with nothing bound: %+v, %v", res, err)
	}
	peek, err := in.Peek(ctx(t), deadletter.PeekOptions{})
	if err != nil || !slices.Equal(messageIDs(peek.Messages), seq("u-", 3)) {
		t.Fatalf("unrouted queue after a returned replay: %v, %v", messageIDs(peek.Messages), err)
	}

	// A new app binds NewEvent; the replay reaches it, OtherEvent stays.
	bound := brokertest.Name(t)
	brokertest.Cleanup(t, []string{bound}, nil)
	if _, err := f.ch.QueueDeclare(bound, true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	if err := f.ch.QueueBind(bound, "NewEvent", f.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	res, err = in.Replay(ctx(t), deadletter.ReplayOptions{})
	if !errors.Is(err, amqp.ErrReturned) || res.Replayed != 2 || res.Kept != 1 {
		t.Fatalf("replay after the binding: %+v, %v", res, err)
	}
	var kept *deadletter.KeptError
	if !errors.As(err, &kept) || kept.Kept != 1 || kept.Selected != 3 {
		t.Errorf("error %v is not a KeptError for 1 of 3", err)
	}
	ds := brokertest.Drain(t, bound, 2, 300*time.Millisecond)
	if len(ds) != 2 || ds[0].MessageId != "u-0" || ds[1].MessageId != "u-2" || ds[0].RoutingKey != "NewEvent" ||
		ds[0].Exchange != f.exchange || ds[0].AppId != "shop" {
		t.Errorf("bound queue got %d messages: %+v", len(ds), ds)
	}
	if got := ids(t, f.unrouted, 1); !slices.Equal(got, []string{"u-1"}) {
		t.Errorf("unrouted queue %v, want [u-1]", got)
	}
}

func TestPurge_FiltersAndAll(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.declare()
	old := time.Now().Add(-2 * time.Hour)
	f.seed(dl{id: "old-a", typ: "AEvent", deadAt: old}, dl{id: "new-a", typ: "AEvent"},
		dl{id: "old-b", typ: "BEvent", deadAt: old}, dl{id: "old-a2", typ: "AEvent", deadAt: old}, dl{id: "new-b", typ: "BEvent"})
	in := f.forApp()
	var purged []string
	res, err := in.Purge(ctx(t), deadletter.PurgeOptions{Filter: deadletter.Filter{Type: "AEvent", OlderThan: time.Hour},
		OnPurge: func(m deadletter.Message) { purged = append(purged, m.ID) }})
	if err != nil || res.Purged != 2 || !slices.Equal(purged, []string{"old-a", "old-a2"}) {
		t.Fatalf("purge AEvent older than 1h: %+v %v, %v", res, purged, err)
	}
	res, err = in.Purge(ctx(t), deadletter.PurgeOptions{Filter: deadletter.Filter{OlderThan: time.Hour}})
	if err != nil || res.Purged != 1 {
		t.Fatalf("purge older than 1h: %+v, %v", res, err)
	}
	peek, err := in.Peek(ctx(t), deadletter.PeekOptions{})
	if err != nil || !slices.Equal(messageIDs(peek.Messages), []string{"new-a", "new-b"}) {
		t.Fatalf("left after purges: %v, %v", messageIDs(peek.Messages), err)
	}
	res, err = in.Purge(ctx(t), deadletter.PurgeOptions{})
	if err != nil || res.Purged != 2 || brokertest.Depth(t, f.dead) != 0 {
		t.Fatalf("purge all: %+v, %v", res, err)
	}
}

func TestInspector_NoQueueAndBusy(t *testing.T) {
	t.Parallel()
	f := setup(t)
	in := f.forApp()
	if _, err := in.List(ctx(t)); !errors.Is(err, deadletter.ErrNoQueue) {
		t.Errorf("List of a missing queue: %v, want ErrNoQueue", err)
	}
	if _, err := in.Replay(ctx(t), deadletter.ReplayOptions{}); !errors.Is(err, deadletter.ErrNoQueue) {
		t.Errorf("Replay of a missing queue: %v, want ErrNoQueue", err)
	}
	if _, err := in.Purge(ctx(t), deadletter.PurgeOptions{}); !errors.Is(err, deadletter.ErrNoQueue) {
		t.Errorf("Purge of a missing queue: %v, want ErrNoQueue", err)
	}
	f.declare()
	f.seed(dl{id: "ev-0", typ: "AEvent"})
	other := brokertest.Channel(t)
	if _, err := other.Consume(f.dead, "", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Peek(ctx(t), deadletter.PeekOptions{}); !errors.Is(err, deadletter.ErrBusy) {
		t.Errorf("Peek of a consumed queue: %v, want ErrBusy", err)
	}
	if _, err := in.Peek(ctx(t), deadletter.PeekOptions{Limit: -1}); !errors.Is(err, deadletter.ErrInvalidOptions) {
		t.Errorf("Peek with a negative limit: %v, want ErrInvalidOptions", err)
	}
	bare := deadletter.ForApp(f.conn, f.queue)
	if _, err := bare.Replay(ctx(t), deadletter.ReplayOptions{}); !errors.Is(err, deadletter.ErrInvalidOptions) {
		t.Errorf("Replay without a Publisher: %v, want ErrInvalidOptions", err)
	}
}

// TestReplay_WithoutTheAppsExchangeFailsOnce: before any worker of this
// version ran, the app's exchange does not exist; a replay says so once and
// leaves every message where it was.
func TestReplay_WithoutTheAppsExchangeFailsOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, q := range []string{f.dead, f.queue} {
		if _, err := f.ch.QueueDeclare(q, true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
			t.Fatal(err)
		}
	}
	f.seed(dl{id: "ev-1", typ: "AEvent", reason: amqp.ReasonExhausted, attempt: 3})
	_, err := f.forApp().Replay(ctx(t), deadletter.ReplayOptions{})
	if !errors.Is(err, deadletter.ErrNoTarget) || !strings.Contains(err.Error(), amqp.HopsExchange(f.queue)) {
		t.Fatalf("Replay: %v, want ErrNoTarget naming %s", err, amqp.HopsExchange(f.queue))
	}
	if got := ids(t, f.dead, 1); !slices.Equal(got, []string{"ev-1"}) {
		t.Errorf("dead-letter queue holds %v, want [ev-1]", got)
	}
}

// TestReplay_NoQueueBeforeNoTarget: with neither the dead-letter queue nor
// the app's exchange there (a mistyped app name, say), Replay says the
// queue is missing, not the target.
func TestReplay_NoQueueBeforeNoTarget(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.forApp().Replay(ctx(t), deadletter.ReplayOptions{})
	if !errors.Is(err, deadletter.ErrNoQueue) {
		t.Fatalf("Replay: %v, want ErrNoQueue", err)
	}
}
