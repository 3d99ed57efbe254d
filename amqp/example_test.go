package amqp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// The examples run against the broker at AMQP_URL, or the local one at
// brokertest.LocalURL: an example cannot skip, nor start a container.
func exampleURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return brokertest.LocalURL
}

// exampleName is unique to this run, so examples share the broker safely.
func exampleName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// exampleCleanup deletes what an example declared.
func exampleCleanup(url string, queues []string, exchange string) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range queues {
		_, _ = ch.QueueDelete(q, false, false, false) // not ifUnused, not ifEmpty, wait
	}
	_ = ch.ExchangeDelete(exchange, false, false) // not ifUnused, wait
}

// A Publisher sends events to the domain exchange, routed by their type.
// Publish returns once the broker confirmed the event: here no app's queue is
// bound for it yet, so the broker keeps it in the exchange's unrouted queue
// instead of dropping it.
func ExamplePublisher() {
	url, exchange := exampleURL(), exampleName("example-publisher")
	defer exampleCleanup(url, []string{amqp.UnroutedQueue(exchange)}, exchange)

	p, err := amqp.NewPublisher(amqp.PublisherConfig{
		URL:      url,
		Exchange: exchange,
		AppID:    "library-service",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = p.Stop(ctx) }()

	err = p.Publish(ctx, event.Event{
		Type:        "CardAddedToLibraryEvent",
		AggregateID: "lib-1",
		Data:        []byte(`{"card":"c-1"}`),
	})
	fmt.Println("published:", err)
	fmt.Println("kept unrouted:", p.Unrouted())
	// Output:
	// published: <nil>
	// kept unrouted: 1
}

// A Worker consumes its app's queue, bound to the types its Registry knows,
// and acks an event once the handler returned nil. Stop waits for running
// handlers.
func ExampleWorker() {
	url, exchange, app := exampleURL(), exampleName("example-worker"), exampleName("example-app")
	policy := retry.Policy{Delays: []time.Duration{time.Second}, MaxAttempts: 2}
	queue := amqp.AppQueue(app)
	defer exampleCleanup(url, []string{queue, amqp.DeadQueue(queue), amqp.RetryQueue(queue, time.Second),
		amqp.UnroutedQueue(exchange)}, exchange)
	defer exampleCleanup(url, nil, amqp.HopsExchange(queue))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	handled := make(chan struct{})
	h := event.NewRegistry().OnFunc("CardAddedToLibraryEvent", func(_ context.Context, e event.Event) error {
		fmt.Printf("handled %s for %s: %s\n", e.Type, e.AggregateID, e.Data)
		close(handled)
		return nil
	})
	w, err := amqp.NewWorker(amqp.WorkerConfig{URL: url, Exchange: exchange, App: app, Retry: policy, Logger: quiet}, h)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// Ready: the queue is declared and bound, so events published from now
	// on reach it.
	select {
	case <-w.Ready():
	case <-ctx.Done():
		fmt.Println("not consuming:", ctx.Err())
		return
	}
	fmt.Println("bound to", w.Bindings())

	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: url, Exchange: exchange, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = p.Stop(ctx) }()
	if err := p.Publish(ctx, event.Event{Type: "CardAddedToLibraryEvent", AggregateID: "lib-1", Data: []byte(`{"card":"c-1"}`)}); err != nil {
		fmt.Println(err)
		return
	}

	select {
	case <-handled:
	case <-ctx.Done():
		fmt.Println("not handled:", ctx.Err())
	}
	fmt.Println("stop:", w.Stop(ctx))
	fmt.Println("handled:", w.Stats().Handled)
	// Output:
	// bound to [CardAddedToLibraryEvent]
	// handled CardAddedToLibraryEvent for lib-1: {"card":"c-1"}
	// stop: <nil>
	// handled: 1
}
