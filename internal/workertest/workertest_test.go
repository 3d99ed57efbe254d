package workertest_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStart_ConsumesThenStopsAtCleanup: the Worker a subtest starts consumes
// once WaitReady returns and has stopped when the subtest is over.
func TestStart_ConsumesThenStopsAtCleanup(t *testing.T) {
	t.Parallel()
	app, exchange := brokertest.Name(t), brokertest.Name(t)
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2}
	q := amqp.AppQueue(app)
	queues := []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(exchange)}
	for _, d := range policy.Stages() {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	brokertest.Cleanup(t, queues, []string{exchange, amqp.HopsExchange(q)})

	var w *amqp.Worker
	t.Run("worker", func(t *testing.T) {
		w = workertest.Start(t, amqp.WorkerConfig{URL: brokertest.URL(t), Exchange: exchange, App: app, Retry: policy,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
		workertest.WaitReady(t, w, 30*time.Second)
		if !w.Consuming() {
			t.Error("WaitReady returned, but the worker does not consume")
		}
	})
	select {
	case <-w.Done():
	default:
		t.Fatal("the worker still runs after its test's cleanup")
	}
	if err := w.Err(); err != nil {
		t.Errorf("worker stopped with %v, want a clean stop", err)
	}
}
