package inbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// Through a real broker: an event published twice under one id, and an
// event whose first handling committed but whose ack was lost (the worker
// saw an error after the commit, so the broker delivers it again after a
// retry delay), each change the app's table once.
func TestInbox_RedeliveriesThroughTheBroker(t *testing.T) {
	pool := setup(t)
	exchange, app := brokertest.Name(t), brokertest.Name(t)
	q := amqp.AppQueue(app)
	policy := retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}
	queues := []string{q, q + ".dead", amqp.UnroutedQueue(exchange)}
	for _, d := range policy.Stages() {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	brokertest.Cleanup(t, queues, []string{exchange, amqp.HopsExchange(q), amqp.UnroutedQueue(exchange)})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var runs, deliveries atomic.Int64
	h, err := New(Config{DB: pool, App: app}, func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		runs.Add(1)
		_, err := tx.Exec(ctx, `INSERT INTO cards (event_id) VALUES ($1)`, ev.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ackLost := errors.New("test: the ack was lost after the commit")
	worker, err := amqp.NewWorker(amqp.WorkerConfig{URL: brokertest.URL(t), Exchange: exchange, App: app, Retry: policy, Logger: quiet},
		event.HandlerFunc(func(ctx context.Context, ev event.Event) error {
			deliveries.Add(1)
			if err := h.Handle(ctx, ev); err != nil {
				return err
			}
			if ev.ID == "ack-lost" && ev.Attempt == 1 {
				return ackLost
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Stop(context.Background()) })
	<-worker.Ready()

	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(t), Exchange: exchange, AppID: "catalog", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	for _, id := range []string{"twice", "twice", "ack-lost"} {
		if err := pub.Publish(ctx, event.Event{ID: id, Type: "CardAdded", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Four deliveries: twice ×2, ack-lost and its redelivery.
	deadline := time.Now().Add(20 * time.Second)
	for deliveries.Load() < 4 || worker.Stats().Handled < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries, %d handled; want 4 and 3", deliveries.Load(), worker.Stats().Handled)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := cards(t, pool); n != 2 || runs.Load() != 2 {
		t.Fatalf("%d rows from %d runs over %d deliveries; want 2 and 2", n, runs.Load(), deliveries.Load())
	}
}
