package amqp_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// TestWorker_HopsExchangeDeletedUnderARunningWorker deletes the app's own
// exchange (events_<app>.hops) while a worker of the app consumes, then
// makes a handler fail once. Retries go through that exchange, which the
// hops connection owns: the hop's publish closes its channel with 404, the
// hops connection reconnects once, declares the exchange and its bindings
// again, and publishes the hop again. The retry arrives, the consuming
// connection never reconnects, and the hops connection does not spin.
// (Before, only the consuming connection declared the exchange: the hops
// publisher reconnected ~7 times a second and the retry never came.)
func TestWorker_HopsExchangeDeletedUnderARunningWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := metrics.New()
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}
	rec := newRecorder(func(e event.Event) error {
		if e.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	w := b.worker(t, amqp.WorkerConfig{EventTypes: []string{"PaymentReceivedEvent"}, Retry: policy, Metrics: m}, rec)
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
	if st := w.Stats(); st.Retried != 1 || st.DeadLettered != 0 {
		t.Errorf("stats %+v, want one retry and no dead letter", st)
	}
	// One reconnect of the hops connection is the 404's; a second one
	// would be a retry of the same failure.
	if n := metricValue(t, m, "eventfleet_reconnects_total", map[string]string{"role": metrics.RoleHops}); n > 1 {
		t.Errorf("hops connection reconnected %v times, want at most 1", n)
	}
	if n := metricValue(t, m, "eventfleet_reconnects_total", map[string]string{"role": metrics.RoleConsumer}); n > 0 {
		t.Errorf("consuming connection reconnected %v times, want 0", n)
	}
}

// TestWorker_HopsBindingDeletedUnderARunningWorker removes the binding of
// the delay queue to the app's exchange: the hop is returned, the worker
// declares its topology again (the binding with it) and publishes the hop
// once more, so the retry still arrives.
func TestWorker_HopsBindingDeletedUnderARunningWorker(t *testing.T) {
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
	delayQ := amqp.RetryQueue(w.Queue(), 50*time.Millisecond)
	if err := admin.QueueUnbind(delayQ, delayQ, amqp.HopsExchange(w.Queue()), nil); err != nil {
		t.Fatalf("unbind %s: %v", delayQ, err)
	}
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("PaymentReceivedEvent", "acct-1", 1))
	brokertest.Eventually(t, 20*time.Second, "the event retried and handled on attempt 2", func() bool {
		return w.Stats().Handled == 1
	})
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("attempts %v, want [1 2]: a returned hop must be declared and published again, not requeued", got)
	}
}
