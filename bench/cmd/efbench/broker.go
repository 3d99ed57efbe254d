package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// eventType is the routing key and AMQP type of every benchmark message.
const eventType = "BenchEvent"

// admin is the harness's own connection for declaring, counting and deleting.
// It remembers every queue and exchange it was told about so that an
// interrupted run still deletes them.
type admin struct {
	url  string
	mu   sync.Mutex
	conn *amqp091.Connection
	ch   *amqp091.Channel

	queues    map[string]bool
	exchanges map[string]bool
}

func newAdmin(url string) (*admin, error) {
	a := &admin{url: url, queues: map[string]bool{}, exchanges: map[string]bool{}}
	if err := a.reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

// reopen replaces the channel (and the connection if it is gone). A failed
// passive declare closes the channel; the next call gets a fresh one.
func (a *admin) reopen() error {
	if a.conn == nil || a.conn.IsClosed() {
		conn, err := amqp091.DialConfig(a.url, amqp091.Config{Properties: amqp091.Table{"connection_name": "efbench-admin"}})
		if err != nil {
			return fmt.Errorf("connect to %s: %w", amqp.RedactURL(a.url), err)
		}
		a.conn = conn
	}
	ch, err := a.conn.Channel()
	if err != nil {
		return err
	}
	a.ch = ch
	return nil
}

func (a *admin) channel() (*amqp091.Channel, error) {
	if a.ch == nil || a.ch.IsClosed() {
		if err := a.reopen(); err != nil {
			return nil, err
		}
	}
	return a.ch, nil
}

// brokerVersion is what the broker says in its connection properties.
func (a *admin) brokerVersion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, _ := a.conn.Properties["version"].(string)
	return v
}

// track records names to delete at the end (cleanup or close).
func (a *admin) track(queues, exchanges []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range queues {
		a.queues[q] = true
	}
	for _, x := range exchanges {
		a.exchanges[x] = true
	}
}

func (a *admin) declareExchange(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.exchanges[name] = true
	ch, err := a.channel()
	if err != nil {
		return err
	}
	return ch.ExchangeDeclare(name, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil)
}

// declareQueue declares a durable queue of the given type ("" leaves the
// type to the broker, a classic queue) with extra arguments, and binds it to
// exchange with "#" unless exchange is empty.
func (a *admin) declareQueue(name, queueType, exchange string, args amqp091.Table) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queues[name] = true
	ch, err := a.channel()
	if err != nil {
		return err
	}
	t := amqp091.Table{}
	for k, v := range args {
		t[k] = v
	}
	if queueType != "" {
		t[amqp091.QueueTypeArg] = queueType
	}
	if _, err := ch.QueueDeclare(name,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		t); err != nil {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	if exchange == "" {
		return nil
	}
	if err := ch.QueueBind(name, "#", exchange, false /* noWait */, nil); err != nil {
		return fmt.Errorf("bind %q to %q: %w", name, exchange, err)
	}
	return nil
}

// ready is the number of messages ready for delivery in queue (a passive
// declare: unacknowledged deliveries are not counted).
func (a *admin) ready(queue string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, err := a.channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil)
	if err != nil {
		return 0, fmt.Errorf("passive declare %q: %w", queue, err)
	}
	return q.Messages, nil
}

// waitReady polls until queue holds want ready messages (confirmed messages
// can take a moment to show in the count) or the timeout passes.
func (a *admin) waitReady(queue string, want int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := a.ready(queue)
		if err != nil || n == want || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanup deletes queues and exchanges, ignoring ones that are already gone.
func (a *admin) cleanup(queues, exchanges []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, q := range queues {
		ch, err := a.channel()
		if err != nil {
			return err
		}
		if _, err := ch.QueueDelete(q, false, false, false); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete queue %q: %w", q, err))
		}
		delete(a.queues, q)
	}
	for _, x := range exchanges {
		ch, err := a.channel()
		if err != nil {
			return err
		}
		if err := ch.ExchangeDelete(x, false, false); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete exchange %q: %w", x, err))
		}
		delete(a.exchanges, x)
	}
	return errors.Join(errs...)
}

// close deletes everything still tracked and closes the connection.
func (a *admin) close() error {
	a.mu.Lock()
	var qs, xs []string
	for q := range a.queues {
		qs = append(qs, q)
	}
	for x := range a.exchanges {
		xs = append(xs, x)
	}
	a.mu.Unlock()
	err := a.cleanup(qs, xs)
	if a.conn != nil {
		_ = a.conn.Close()
	}
	return err
}

func isNotFound(err error) bool {
	var e *amqp091.Error
	return errors.As(err, &e) && e.Code == amqp091.NotFound
}

// workerNames lists everything an eventfleet worker of app on exchange
// declares with the default retry policy, for deletion.
func workerNames(exchange, app string) (queues, exchanges []string) {
	q := amqp.AppQueue(app)
	queues = []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(exchange)}
	for _, d := range (retry.Policy{}).WithDefaults().Stages() {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	return queues, []string{exchange}
}

// benchMessage is the AMQP message the bare client sends: the same
// properties eventfleet's publisher sets (minus the empty header table),
// with an event ID of the same kind (a UUIDv7, made here as a hand-written
// publisher of events would). The ID's length is part of the load: on a
// classic queue the bare loop published about 10% slower with 36-character
// IDs than with the 1–5-digit counters it first sent (docs/benchmarks.md).
func benchMessage(body []byte) amqp091.Publishing {
	return amqp091.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp091.Persistent,
		MessageId:    event.NewID(),
		Timestamp:    time.Now(),
		Type:         eventType,
		AppId:        "efbench",
		Body:         body,
	}
}

// dial opens a named connection.
func dial(url, name string) (*amqp091.Connection, error) {
	return amqp091.DialConfig(url, amqp091.Config{Properties: amqp091.Table{"connection_name": name}})
}

// barePublish is the reference publisher: one channel in confirm mode, a
// sliding window of outstanding confirms, persistent mandatory messages. It
// returns once every message is confirmed. pace, when set, is called before
// each message and may block (the latency run uses it to hold a rate).
func barePublish(ctx context.Context, ch *amqp091.Channel, exchange, key string, n, window int,
	msg func(i int) amqp091.Publishing, pace func(i int)) error {
	return barePublishBatches(ctx, ch, exchange, key, n, window, 0, msg, pace)
}

// barePublishBatches is barePublish that, with batch > 0, waits for every
// confirm of one batch of messages before it sends the next: what a caller of
// a "publish these and tell me when all are confirmed" call does.
func barePublishBatches(ctx context.Context, ch *amqp091.Channel, exchange, key string, n, window, batch int,
	msg func(i int) amqp091.Publishing, pace func(i int)) error {
	if err := ch.Confirm(false /* noWait */); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window+1))
	outstanding := 0
	wait := func() error {
		select {
		case c, ok := <-confirms:
			if !ok {
				return errors.New("channel closed while waiting for confirms")
			}
			if !c.Ack {
				return fmt.Errorf("message %d nacked", c.DeliveryTag)
			}
			outstanding--
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := 0; i < n; i++ {
		for outstanding >= window || (batch > 0 && i%batch == 0 && outstanding > 0) {
			if err := wait(); err != nil {
				return err
			}
		}
		if pace != nil {
			pace(i)
		}
		err := ch.PublishWithContext(ctx, exchange, key,
			true,  // mandatory, as eventfleet publishes
			false, // immediate
			msg(i))
		if err != nil {
			return err
		}
		outstanding++
	}
	for outstanding > 0 {
		if err := wait(); err != nil {
			return err
		}
	}
	return nil
}

// fill puts n benchmark messages into exchange (routing key eventType) or,
// with an empty exchange, straight into the queue named key.
func fill(ctx context.Context, url, exchange, key string, n, window int, body []byte) error {
	conn, ch, err := dialChannel(url, "efbench-fill")
	if err != nil {
		return err
	}
	defer conn.Close()
	return barePublish(ctx, ch, exchange, key, n, window, func(i int) amqp091.Publishing {
		return benchMessage(body)
	}, nil)
}

// bareConsume is the reference consumer: prefetch, no-op handling, one
// multiple-ack every ackEvery deliveries and on the last. onDelivery, when
// set, sees every delivery (the latency run reads timestamps there). It
// signals consuming once the consumer is registered.
func bareConsume(ctx context.Context, url, queue string, n, prefetch, ackEvery int,
	onDelivery func(*amqp091.Delivery), consuming chan<- struct{}) error {
	conn, ds, err := consumeChannel(url, "efbench-consume", queue, prefetch)
	if err != nil {
		return err
	}
	defer conn.Close()
	if consuming != nil {
		close(consuming)
	}
	for i := 1; i <= n; i++ {
		select {
		case d, ok := <-ds:
			if !ok {
				return fmt.Errorf("deliveries closed after %d of %d", i-1, n)
			}
			if onDelivery != nil {
				onDelivery(&d)
			}
			if i%ackEvery == 0 || i == n {
				if err := d.Ack(true /* multiple */); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("consumed %d of %d: %w", i-1, n, ctx.Err())
		}
	}
	return nil
}

// dialChannel dials and opens one channel; close the connection when done.
// consumeChannel dials url and consumes queue with manual acks and the given
// prefetch, as every bare consumer here does; closing the connection ends it.
func consumeChannel(url, name, queue string, prefetch int) (*amqp091.Connection, <-chan amqp091.Delivery, error) {
	conn, ch, err := dialChannel(url, name)
	if err != nil {
		return nil, nil, err
	}
	if err := ch.Qos(prefetch, 0, false /* global */); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	ds, err := ch.Consume(queue, "",
		false, // autoAck
		false, // exclusive
		false, // noLocal
		false, // noWait
		nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, ds, nil
}

func dialChannel(url, name string) (*amqp091.Connection, *amqp091.Channel, error) {
	conn, err := dial(url, name)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, ch, nil
}
