// Command natsrelay is natsbridge's JetStream Bridge publishing to RabbitMQ
// in a process of its own, for tests that SIGKILL it mid-stream. It reads
// NATS_URL, NATS_SUBJECT, NATS_STREAM, NATS_CONSUMER, NATS_ACK_WAIT,
// AMQP_URL, EXCHANGE, PUBLISH_WINDOW, PUBLISH_TIMEOUT and BATCH_DELAY (a
// pause before each batch: a broker slower than the stream, so that a kill
// lands mid-stream). It prints "ready" once the Bridge runs, and on SIGTERM
// stops it and prints "stats " and its Stats as JSON.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/natsbridge"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natsrelay:", err)
		os.Exit(1)
	}
}

func run() error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	window, _ := strconv.Atoi(os.Getenv("PUBLISH_WINDOW"))
	ackWait, _ := time.ParseDuration(os.Getenv("NATS_ACK_WAIT"))
	timeout, _ := time.ParseDuration(os.Getenv("PUBLISH_TIMEOUT"))
	delay, _ := time.ParseDuration(os.Getenv("BATCH_DELAY"))

	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: os.Getenv("AMQP_URL"), Exchange: os.Getenv("EXCHANGE"),
		AppID: "natsrelay", Window: window, Logger: log})
	if err != nil {
		return err
	}
	if err := pub.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = pub.Stop(context.Background()) }()
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: os.Getenv("NATS_URL"),
		Subject: os.Getenv("NATS_SUBJECT"), Stream: os.Getenv("NATS_STREAM"), Consumer: os.Getenv("NATS_CONSUMER"),
		AckWait: ackWait, PublishTimeout: timeout, Window: window, Logger: log}, slowed{pub, delay})
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	select {
	case <-ctx.Done():
	case <-b.Done():
		return b.Err()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(sctx); err != nil {
		return err
	}
	st, _ := json.Marshal(b.Stats())
	fmt.Printf("stats %s\n", st)
	return nil
}

// slowed pauses before each batch.
type slowed struct {
	pub   *amqp.Publisher
	delay time.Duration
}

func (s slowed) PublishBatch(ctx context.Context, evs []event.Event) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
	}
	return s.pub.PublishBatch(ctx, evs)
}
