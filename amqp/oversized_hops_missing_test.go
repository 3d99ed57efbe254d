package amqp_test

import (
	"bytes"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestWorker_OversizedBodyDeadLetteredWhenHopsExchangeIsMissing: a classic
// app queue created by this version dead-letters through events_<app>.hops,
// at most once. The worker rejects a body over MaxBody and lets the broker
// move it; with the app's exchange gone (deleted under a running worker) the
// broker would drop the message, in neither the app's queue nor its
// dead-letter queue. The worker declares its own topology again before such
// a reject, so the event reaches the dead-letter queue.
func TestWorker_OversizedBodyDeadLetteredWhenHopsExchangeIsMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := newRecorder(nil)
	w := b.worker(t, amqp.WorkerConfig{QueueType: amqp.QueueClassic, MaxBody: 1024, EventTypes: []string{"Big", "Good"}}, r)
	admin := brokertest.Channel(t)
	if err := admin.ExchangeDelete(amqp.HopsExchange(w.Queue()), false /* ifUnused */, false /* noWait */); err != nil {
		t.Fatalf("delete hops exchange: %v", err)
	}
	big := bytes.Repeat([]byte("y"), 4096)
	big[0], big[len(big)-1] = '"', '"'
	rawPublish(t, b.exchange, "Big", amqp091.Publishing{MessageId: "big", Body: big})
	rawPublish(t, b.exchange, "Good", amqp091.Publishing{MessageId: "good", Body: []byte(`{}`)})
	brokertest.Eventually(t, 20*time.Second, "the good event handled after the big one was rejected", func() bool {
		return r.count("good") == 1 && w.Stats().DeadLettered == 1
	})
	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 10*time.Second, "the rejected event in the dead-letter queue", func() bool {
		return brokertest.Depth(t, dead) == 1
	})
}
