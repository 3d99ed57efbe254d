package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// refusalWorkerCfg is a Worker of app "a" on node as user, with a fast
// backoff and a 200ms retry delay. It only checks the shared topology
// (TOPOLOGY=passive), which declaredByAdmin declared: the users below may
// not bind the unrouted queue.
func refusalWorkerCfg(node *brokertest.Node, user string, log *slog.Logger) amqp.WorkerConfig {
	return amqp.WorkerConfig{URL: userURL(node, user), App: "a", Concurrency: 2, Logger: log, Topology: amqp.TopologyPassive,
		Backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond},
		Retry:   retry.Policy{Delays: []time.Duration{200 * time.Millisecond}, MaxAttempts: 3}}
}

// declaredByAdmin runs a Worker of app "a" as guest until it consumes, so
// that the topology exists and a user who may not declare new queues (or
// write to amq.default, which a new queue's dead-letter exchange "" needs)
// can re-declare it.
func declaredByAdmin(t *testing.T, node *brokertest.Node) {
	t.Helper()
	cfg := refusalWorkerCfg(node, "", testLogger(t))
	cfg.URL, cfg.Topology = node.URL(), amqp.TopologyDeclare
	w, err := amqp.NewWorker(cfg, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("the admin's worker did not consume: %v", w.LastError())
	}
	must(t, w.Stop(context.Background()))
}

// noHopsWrite is the write pattern of a user of app a that may bind its
// queues (write on each) but not publish to events_a.hops.
const noHopsWrite = `^events_a(\.dead|\.retry\..*)?$`

func startRefusalWorker(t *testing.T, cfg amqp.WorkerConfig, h event.Handler) *amqp.Worker {
	t.Helper()
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// A worker whose user may not read its queue: basic.consume is refused. It
// may read the exchanges it binds from (domain_events, events_a.hops).
// LastError names ErrAccessRefused, the queue and the permission; it keeps
// retrying with backoff, and consumes once read is granted.
func TestWorker_ConsumeRefusedNamedAndRetried(t *testing.T) {
	node := brokertest.StartNode(t)
	declaredByAdmin(t, node)
	node.Ctl(t, "add_user", "noread", "pw-noread")
	node.Ctl(t, "set_permissions", "-p", "/", "noread", ".*", ".*", `^(domain_events|events_a\.hops)$`)
	rec := &attempts{Handler: testLogger(t).Handler(), msg: "cannot consume; retrying"}
	w := startRefusalWorker(t, refusalWorkerCfg(node, "noread", slog.New(rec)),
		event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	brokertest.Eventually(t, 15*time.Second, "3 refused attempts", func() bool { return len(rec.times()) >= 3 })
	last := w.LastError()
	if !errors.Is(last, amqp.ErrAccessRefused) || !strings.Contains(last.Error(), `read permission on queue "events_a"`) {
		t.Fatalf("LastError = %v; want ErrAccessRefused naming read permission on queue events_a", last)
	}
	at := rec.times()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 40*time.Millisecond {
			t.Errorf("attempt %d came %v after the one before: no backoff", i+1, gap)
		}
	}
	if w.Consuming() {
		t.Fatal("consuming without read permission")
	}
	node.Ctl(t, "set_permissions", "-p", "/", "noread", ".*", ".*", ".*")
	brokertest.Eventually(t, 15*time.Second, "consuming after the grant", w.Consuming)
}

// A worker whose user may not write where its retries go (its own exchange
// events_a.hops; it may write its queues, to bind them): the failed deliveries are neither acked nor bounced
// back and forth; they are held, the refusal is logged once, HopsRefused
// names it, and once write is granted the held deliveries are retried and
// handled.
func TestWorker_HopRefusedHoldsTheDelivery(t *testing.T) {
	node := brokertest.StartNode(t)
	declaredByAdmin(t, node)
	node.Ctl(t, "add_user", "nowrite", "pw-nowrite")
	node.Ctl(t, "set_permissions", "-p", "/", "nowrite", ".*", noHopsWrite, ".*")
	rec := &attempts{Handler: testLogger(t).Handler(),
		msg: "the broker refuses the worker's retries and dead letters; holding those deliveries unacked (the handler loops wait) and trying again with backoff until it takes them"}
	var calls atomic.Int64
	h := event.HandlerFunc(func(_ context.Context, ev event.Event) error {
		calls.Add(1)
		if ev.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	w := startRefusalWorker(t, refusalWorkerCfg(node, "nowrite", slog.New(rec)), h)
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not consuming: %v", w.LastError())
	}

	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Logger: testLogger(t)})
	must(t, err)
	must(t, pub.Start(context.Background()))
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3
	for i := range n {
		must(t, pub.Publish(ctx, ev("HeldEvent", fmt.Sprint(i), i)))
	}

	brokertest.Eventually(t, 15*time.Second, "HopsRefused names the refusal", func() bool {
		err := w.HopsRefused()
		return errors.Is(err, amqp.ErrAccessRefused) && strings.Contains(err.Error(), `write permission on exchange "events_a.hops"`)
	})
	// Two handler loops, each holding one failed delivery: the third waits
	// in the prefetch, and nothing is redelivered meanwhile.
	brokertest.Eventually(t, 15*time.Second, "both handler loops holding", func() bool { return calls.Load() == 2 })
	held := time.Now()
	for time.Since(held) < 2*time.Second {
		if got := calls.Load(); got != 2 {
			t.Fatalf("%d handler calls while the hops are refused; want the 2 held (no redelivery loop)", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := w.Stats(); st.Handled != 0 || st.Retried != 0 || st.DeadLettered != 0 {
		t.Fatalf("stats %+v while held; want nothing settled", st)
	}

	node.Ctl(t, "set_permissions", "-p", "/", "nowrite", ".*", ".*", ".*")
	brokertest.Eventually(t, 30*time.Second, "every event retried and then handled", func() bool {
		st := w.Stats()
		return st.Retried == n && st.Handled == n
	})
	if got := len(rec.times()); got != 1 {
		t.Errorf("the refusal was logged %d times; want once", got)
	}
	if w.HopsRefused() != nil {
		t.Errorf("HopsRefused = %v after the recovery", w.HopsRefused())
	}
	admin := brokertest.ChannelAt(t, node.URL())
	if got := depth(t, admin, "events_a.dead"); got != 0 {
		t.Errorf("%d dead letters; want none", got)
	}
}

// Stop while deliveries are held for a refused hop: the held handler loops
// give up at once (no hard stop needed) and every delivery goes back to the
// queue unacked, none lost.
func TestWorker_StopWhileHopRefused(t *testing.T) {
	node := brokertest.StartNode(t)
	declaredByAdmin(t, node)
	node.Ctl(t, "add_user", "nowrite", "pw-nowrite")
	node.Ctl(t, "set_permissions", "-p", "/", "nowrite", ".*", noHopsWrite, ".*")
	var calls atomic.Int64
	w, err := amqp.NewWorker(refusalWorkerCfg(node, "nowrite", testLogger(t)),
		event.HandlerFunc(func(context.Context, event.Event) error { calls.Add(1); return errors.New("fails") }))
	must(t, err)
	must(t, w.Start(context.Background()))
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not consuming: %v", w.LastError())
	}
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Logger: testLogger(t)})
	must(t, err)
	must(t, pub.Start(context.Background()))
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3
	for i := range n {
		must(t, pub.Publish(ctx, ev("HeldEvent", fmt.Sprint(i), i)))
	}
	brokertest.Eventually(t, 15*time.Second, "both handler loops holding", func() bool {
		return calls.Load() == 2 && w.HopsRefused() != nil
	})
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	start := time.Now()
	if err := w.Stop(sctx); err != nil {
		t.Fatalf("Stop = %v after %v; want a soft stop", err, time.Since(start))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Stop took %v with held deliveries", took)
	}
	admin := brokertest.ChannelAt(t, node.URL())
	brokertest.Eventually(t, 10*time.Second, "every delivery back in the queue", func() bool {
		return depth(t, admin, "events_a") == n
	})
	if st := w.Stats(); st.Handled != 0 || st.Retried != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v; want nothing settled", st)
	}
}
