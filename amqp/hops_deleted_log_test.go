package amqp_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// TestWorker_HopsExchangeDeletedIsNotReportedAsARefusal: an operator deletes
// the app's own exchange under a running worker, whose user may declare it
// again (guest). The hop's 404 is the hops connection's to repair, and it
// does (TestWorker_HopsExchangeDeletedUnderARunningWorker); the worker must
// not also say at ERROR that the broker refuses its retries and dead letters
// (that line is for a permission only an operator can grant, and it is
// what an alert would watch). Today publishHop's declare-again asks the
// Publisher for a session, which fails at once with the recorded 404 before
// the reconnect has declared anything, and the hop goes to holdRefused.
func TestWorker_HopsExchangeDeletedIsNotReportedAsARefusal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &attempts{Handler: b.log.Handler(),
		msg: "the broker refuses the worker's retries and dead letters; holding those deliveries unacked (the handler loops wait) and trying again with backoff until it takes them"}
	b.log = slog.New(rec)
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}
	h := newRecorder(func(e event.Event) error {
		if e.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	w := b.worker(t, amqp.WorkerConfig{EventTypes: []string{"PaymentReceivedEvent"}, Retry: policy}, h)
	admin := brokertest.Channel(t)
	if err := admin.ExchangeDelete(amqp.HopsExchange(w.Queue()), false /* ifUnused */, false /* noWait */); err != nil {
		t.Fatalf("delete hops exchange: %v", err)
	}
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("PaymentReceivedEvent", "acct-1", 1))
	brokertest.Eventually(t, 45*time.Second, "the event retried and handled on attempt 2", func() bool {
		return w.Stats().Handled == 1
	})
	if n := len(rec.times()); n != 0 {
		t.Errorf("a deleted exchange the worker declares again was logged %d times as the broker refusing its hops", n)
	}
}
