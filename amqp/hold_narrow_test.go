package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestWorker_HeldRedeliveryDoesNotStallTheCautiousStart: a worker whose
// hops are refused holds a failing delivery unacked. When it restarts (a
// deploy, or any reconnect of the consuming connection), that delivery comes
// back first, redelivered, while the new session still consumes with
// prefetch 1 (its cautious start widens only at a delivery never delivered
// before). Held there, it must not keep the one slot of the narrow consumer
// and stop every other event: a good event published behind it is handled
// while it is held, as it was before the restart.
func TestWorker_HeldRedeliveryDoesNotStallTheCautiousStart(t *testing.T) {
	node := brokertest.StartNode(t)
	declaredByAdmin(t, node)
	node.Ctl(t, "add_user", "nowrite", "pw-nowrite")
	node.Ctl(t, "set_permissions", "-p", "/", "nowrite", ".*", noHopsWrite, ".*")
	h := event.HandlerFunc(func(_ context.Context, e event.Event) error {
		if e.Type == "FailingEvent" {
			return errors.New("fails")
		}
		return nil
	})
	cfg := refusalWorkerCfg(node, "nowrite", testLogger(t))
	first, err := amqp.NewWorker(cfg, h)
	must(t, err)
	must(t, first.Start(context.Background()))
	select {
	case <-first.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not consuming: %v", first.LastError())
	}
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Logger: testLogger(t)})
	must(t, err)
	must(t, pub.Start(context.Background()))
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, pub.Publish(ctx, ev("FailingEvent", "agg", 1)))
	brokertest.Eventually(t, 15*time.Second, "the failing event held", func() bool { return first.HopsRefused() != nil })
	must(t, first.Stop(context.Background())) // the held delivery goes back, redelivered next

	second := startRefusalWorker(t, cfg, h)
	select {
	case <-second.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not consuming after the restart: %v", second.LastError())
	}
	brokertest.Eventually(t, 15*time.Second, "the failing event held again", func() bool { return second.HopsRefused() != nil })
	for i := range 3 {
		must(t, pub.Publish(ctx, ev("GoodEvent", fmt.Sprint(i), i)))
	}
	brokertest.Eventually(t, 20*time.Second, "the good events handled while the failing one is held", func() bool {
		return second.Stats().Handled == 3
	})
	if st := second.Stats(); st.Retried != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v; the failing event must stay held", st)
	}
}

// TestWorker_HopsExchangeDeletedAndNotDeclarableIsHeld: the app's exchange
// is deleted and the worker's user may no longer declare it. The hop's 404
// waits for the hops connection's reconnect, whose declare is refused: the
// delivery is then held (not acked, not bounced back and forth), HopsRefused
// says so, and once configure is granted again the retry goes through.
func TestWorker_HopsExchangeDeletedAndNotDeclarableIsHeld(t *testing.T) {
	node := brokertest.StartNode(t)
	declaredByAdmin(t, node)
	node.Ctl(t, "add_user", "a1", "pw-a1")
	node.Ctl(t, "set_permissions", "-p", "/", "a1", ".*", ".*", ".*")
	var calls atomic.Int64
	h := event.HandlerFunc(func(_ context.Context, e event.Event) error {
		calls.Add(1)
		if e.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	w := startRefusalWorker(t, refusalWorkerCfg(node, "a1", testLogger(t)), h)
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not consuming: %v", w.LastError())
	}
	node.Ctl(t, "set_permissions", "-p", "/", "a1", `^events_a(\.dead|\.retry\..*)?$`, ".*", ".*")
	admin := brokertest.ChannelAt(t, node.URL())
	must(t, admin.ExchangeDelete("events_a.hops", false, false))
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Logger: testLogger(t)})
	must(t, err)
	must(t, pub.Start(context.Background()))
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, pub.Publish(ctx, ev("HeldEvent", "agg", 1)))
	brokertest.Eventually(t, 20*time.Second, "HopsRefused names the refused declare", func() bool {
		return errors.Is(w.HopsRefused(), amqp.ErrAccessRefused)
	})
	held := time.Now()
	for time.Since(held) < 2*time.Second {
		if got := calls.Load(); got != 1 {
			t.Fatalf("%d handler calls while held; want 1 (no redelivery loop)", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := w.Stats(); st.Retried != 0 || st.Handled != 0 {
		t.Fatalf("stats %+v while held; want nothing settled", st)
	}
	node.Ctl(t, "set_permissions", "-p", "/", "a1", ".*", ".*", ".*")
	brokertest.Eventually(t, 30*time.Second, "retried and handled after the grant", func() bool {
		st := w.Stats()
		return st.Retried == 1 && st.Handled == 1
	})
}
