package amqp_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// TestWorker_HopsExchangeDeletedUnderARunningWorker deletes the app's own
// exchange (events_<app>.hops) while a worker of the app consumes, then
// makes a handler fail once. Before the change retries went through the
// default exchange, which cannot be deleted; now they go through an
// exchange that the worker declares only when its consuming connection
// connects, and the hops connection declares nothing. The retry should
// still arrive: the worker must declare its exchange and bindings again
// when a hop finds it missing (404 on the hops channel), not publish into
// a missing exchange until the consuming connection happens to reconnect.
func TestWorker_HopsExchangeDeletedUnderARunningWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}
	rec := newRecorder(func(e event.Event) error {
		if e.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	w := b.worker(t, amqp.WorkerConfig{EventTypes: []string{"PaymentReceivedEvent"}, Retry: policy}, rec)
	admin := brokertest.Channel(t)
	if err := admin.ExchangeDelete(amqp.HopsExchange(w.Queue()), false /* ifUnused */, false /* noWait */); err != nil {
		t.Fatalf("delete hops exchange: %v", err)
	}
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("PaymentReceivedEvent", "acct-1", 1))
	brokertest.Eventually(t, 45*time.Second, "the event retried and handled on attempt 2", func() bool {
		return w.Stats().Handled == 1
	})
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("attempts %v, want [1 2]", got)
	}
}
