package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// runBareConsume fills a queue with n messages, then times the reference
// consumer draining it, from dial to the last ack.
func (b *bench) runBareConsume(ctx context.Context, n int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(queue, n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	t := b.startTimer()
	err = bareConsume(ctx, b.o.url, queue, n, b.o.prefetch, bareAckEvery, nil, nil)
	return t.stop(), err
}

// bareAckEvery is how many deliveries the reference consumer acks at once.
const bareAckEvery = 64

// workerConfig is the eventfleet worker configuration every worker
// contender uses: the round's queue type, the harness's prefetch and
// concurrency, default retry policy.
func (b *bench) workerConfig(exchange, app string) amqp.WorkerConfig {
	return amqp.WorkerConfig{
		URL:         b.o.url,
		Exchange:    exchange,
		App:         app,
		QueueType:   b.queue,
		Prefetch:    b.o.prefetch,
		Concurrency: b.o.concurrency,
		Logger:      discardLogger,
	}
}

// declareWorker declares a worker's topology by running one until it
// consumes, then stopping it.
func declareWorker(ctx context.Context, cfg amqp.WorkerConfig) error {
	w, err := amqp.NewWorker(cfg, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop(context.Background())
	select {
	case <-w.Ready():
		return nil
	case <-w.Done():
		return fmt.Errorf("worker stopped: %w", w.Err())
	case <-time.After(30 * time.Second):
		return errors.New("worker not consuming after 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runEventfleetWorker fills the app's queue with n messages (bare
// publisher), then times a fresh Worker with a no-op handler from Start
// until Stats().Handled reaches n.
func (b *bench) runEventfleetWorker(ctx context.Context, n int) (measurement, error) {
	exchange, app := b.name("x"), b.name("app")
	qs, xs := workerNames(exchange, app)
	b.adm.track(qs, xs)
	defer b.cleanup(qs, xs)
	cfg := b.workerConfig(exchange, app)
	if err := declareWorker(ctx, cfg); err != nil {
		return measurement{}, fmt.Errorf("declare: %w", err)
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(amqp.AppQueue(app), n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	w, err := amqp.NewWorker(cfg, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	if err != nil {
		return measurement{}, err
	}
	defer w.Stop(context.Background())
	deadline := time.Now().Add(b.o.timeout)
	ready := w.Ready()
	var readyAfter time.Duration
	t := b.startTimer()
	if err := w.Start(ctx); err != nil {
		return t.stop(), err
	}
	for w.Stats().Handled < int64(n) {
		if readyAfter == 0 {
			select {
			case <-ready:
				readyAfter = time.Since(t.began)
			default:
			}
		}
		select {
		case <-w.Done():
			return t.stop(), fmt.Errorf("worker stopped after %d of %d: %v", w.Stats().Handled, n, w.Err())
		case <-ctx.Done():
			return t.stop(), ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("handled %d of %d within %v", w.Stats().Handled, n, b.o.timeout)
		}
		time.Sleep(time.Millisecond)
	}
	m := t.stop()
	m.extra["ready_ms"] = float64(readyAfter.Microseconds()) / 1000
	if readyAfter > 0 && readyAfter < m.elapsed {
		// Throughput once consuming, without connecting and declaring.
		m.extra["rate_after_ready"] = float64(n) / (m.elapsed - readyAfter).Seconds()
	}
	if st := w.Stats(); st.Retried+st.DeadLettered > 0 {
		return m, fmt.Errorf("worker retried %d and dead-lettered %d events", st.Retried, st.DeadLettered)
	}
	return m, nil
}

// runWatermillConsume fills a watermill queue with n messages, then times a
// watermill subscriber, from NewSubscriber to the n-th Ack.
func (b *bench) runWatermillConsume(ctx context.Context, n int, tuned bool) (measurement, error) {
	topic, done, err := b.wmQueue()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	if err := fill(ctx, b.o.url, "", topic, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(topic, n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	cfg := b.wmConfig(tuned)
	sctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	t := b.startTimer()
	sub, err := wmamqp.NewSubscriber(cfg, watermill.NopLogger{})
	if err != nil {
		return t.stop(), err
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(sctx, topic)
	if err != nil {
		return t.stop(), err
	}
	for i := 0; i < n; i++ {
		msg, ok := <-msgs
		if !ok {
			return t.stop(), fmt.Errorf("subscription ended after %d of %d: %v", i, n, sctx.Err())
		}
		msg.Ack()
	}
	return t.stop(), nil
}
