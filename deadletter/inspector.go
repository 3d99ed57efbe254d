package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
)

// Errors returned by Inspector, besides amqp.ErrReturned and amqp.ErrNacked
// for a replayed copy the broker did not take. Test with errors.Is.
var (
	// ErrNoQueue: the queue to inspect does not exist (no worker of the app,
	// or no publisher or worker with that exchange, ever ran on this broker).
	ErrNoQueue = errors.New("deadletter: queue does not exist")
	// ErrNoTarget: the exchange Replay sends to does not exist (an app's
	// own exchange, which its workers declare since this version).
	ErrNoTarget = errors.New("deadletter: replay target does not exist")
	// ErrBusy: something else consumes the queue (another Inspector, or a
	// foreign consumer). An operation would then see only part of the queue
	// and could not keep its order, so it refuses to start.
	ErrBusy = errors.New("deadletter: queue has other consumers")
	// ErrUnconfirmed: the broker did not confirm a replayed message in time,
	// or the Publisher stopped (a lost publishing connection alone is not
	// this: the Publisher sends the copy again on its next one), or the
	// original could not be removed. It stays where it was and may also
	// have reached the target (a duplicate, never a loss).
	ErrUnconfirmed = errors.New("deadletter: replayed message not confirmed")
	// ErrInvalidOptions wraps every options validation error.
	ErrInvalidOptions = errors.New("deadletter: invalid options")
	// ErrBodyWithheld: a message selected for replay whose body the
	// connection did not read (over its body limit) stays in the queue: a
	// copy without it would lose the event.
	ErrBodyWithheld = errors.New("deadletter: body not read")
)

// MaxScan is the most messages one operation can hold unacknowledged: the
// AMQP prefetch count is 16 bits. An operation that must look past more
// messages than it removes stops there and says so (Incomplete).
const MaxScan = 65535

// DefaultIdleTimeout is how long an operation waits for the next message of
// the queue before it stops (the queue said it held more, but another client
// took them).
const DefaultIdleTimeout = 5 * time.Second

// Inspector reads, replays and deletes the messages of one dead-letter queue
// ("events_<app>.dead") or unrouted queue ("<exchange>.unrouted").
//
// Every operation consumes the queue with manual acknowledgements and
// acknowledges only what it removes: a replayed message after the broker
// confirmed its copy, a purged message at once (in runs of consecutive
// deliveries, one multiple ack each; see scan.remove). Everything else it read stays
// unacknowledged and goes back when the operation closes its channel; on
// RabbitMQ's quorum queues that puts it back at the head of the queue, in its
// order (see the package documentation for what was measured). Operations
// never nack and never cancel their consumer, because both would move
// messages to the tail. Run one operation per queue at a time; an operation
// refuses a queue that has consumers (ErrBusy).
//
// An Inspector is safe for sequential use; it opens its own channels on the
// connection and closes them before an operation returns.
type Inspector struct {
	conn     *amqp091.Connection
	queue    string
	unrouted bool
	// Replay target: exchange and routing key; key "" means each
	// message's original routing key.
	exchange, key string
	// Publisher sends Replay's copies, with publisher confirms; Replay
	// fails with ErrInvalidOptions without one, a dry run needs none. A
	// started *amqp.Publisher on the same broker, with its own connection;
	// its Exchange is not used (each copy is addressed by Replay), though
	// it declares that exchange as every Publisher does. The caller starts
	// and stops it.
	Publisher *amqp.Publisher
	// IdleTimeout is how long to wait for the next message before giving
	// up on the rest. Defaults to DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// ForApp returns an Inspector for the dead-letter queue of the app queue
// appQueue ("events_<app>"): amqp.DeadQueue(appQueue). Replay sends messages back
// to appQueue alone, through the app's own exchange (amqp.HopsExchange), so
// no other app receives them again and the replaying user needs no write
// permission on the default exchange, which would reach every queue.
func ForApp(conn *amqp091.Connection, appQueue string) *Inspector {
	return &Inspector{conn: conn, queue: amqp.DeadQueue(appQueue),
		exchange: amqp.HopsExchange(appQueue), key: appQueue, IdleTimeout: DefaultIdleTimeout}
}

// ForUnrouted returns an Inspector for unroutedQueue, where publishers keep
// the events of exchange that no queue was bound for. Replay publishes them
// to exchange again with their original routing key (HeaderRoutingKey), so
// they reach the queues bound since.
func ForUnrouted(conn *amqp091.Connection, unroutedQueue, exchange string) *Inspector {
	return &Inspector{conn: conn, queue: unroutedQueue, unrouted: true, exchange: exchange, IdleTimeout: DefaultIdleTimeout}
}

// Queue is the queue the Inspector works on.
func (i *Inspector) Queue() string { return i.queue }

// Target describes where Replay sends messages, e.g. `queue "events_billing"`.
func (i *Inspector) Target() string {
	if i.unrouted {
		return fmt.Sprintf("exchange %q", i.exchange)
	}
	return fmt.Sprintf("queue %q", i.key)
}

// Filter selects messages. The zero Filter selects all.
type Filter struct {
	// Type selects messages whose event type or original routing key is Type.
	Type string
	// ID selects the message with this id (Message.ID).
	ID string
	// OlderThan selects messages whose Time is more than OlderThan ago.
	// Messages with no known time are never selected by age.
	OlderThan time.Duration
}

// IsZero reports whether f selects every message.
func (f Filter) IsZero() bool { return f == Filter{} }

// Match reports whether f selects m at time now.
func (f Filter) Match(m Message, now time.Time) bool {
	if f.Type != "" && m.Type != f.Type && m.RoutingKey != f.Type {
		return false
	}
	if f.ID != "" && m.ID != f.ID {
		return false
	}
	if f.OlderThan > 0 && (m.Time.IsZero() || !m.Time.Before(now.Add(-f.OlderThan))) {
		return false
	}
	return true
}

func (f Filter) validate() error {
	if f.OlderThan < 0 {
		return fmt.Errorf("%w: older-than must not be negative, got %v", ErrInvalidOptions, f.OlderThan)
	}
	return nil
}

// Scan says how much of the queue an operation looked at.
type Scan struct {
	// Queue is the queue's name.
	Queue string
	// Depth is the number of ready messages when the operation began.
	Depth int
	// Scanned is how many of them the operation read.
	Scanned int
	// Incomplete is set when the operation stopped before it had read every
	// message it needed: more than MaxScan had to stay in the queue, or the
	// queue stopped delivering for IdleTimeout.
	Incomplete bool
}

// scan is one operation's consumer.
type scan struct {
	Scan
	i         *Inspector
	ch        *amqp091.Channel
	consuming bool
	// pastReturned: a delivery that was not a redelivery arrived, so every
	// message put back before the scan began has been delivered to it.
	pastReturned bool
	deliveries   <-chan amqp091.Delivery
	closed       <-chan *amqp091.Error
	prefetch     int
	held         int // delivered and not removed
	idle         time.Duration
	// Removals are acknowledged in runs, one basic.ack with multiple set
	// for up to ackRun consecutive delivery tags: a quorum queue that is
	// handed thousands of single acks per second and then a channel close
	// can give back some it had been acked for (a duplicate; seen in
	// BenchmarkReplay). acked is the highest tag up to which every
	// delivery is removed or in the run; run counts the run's tags.
	acked uint64
	run   int
}

// ackRun bounds a run of removals acknowledged together.
const ackRun = 64

// settleTimeout bounds the wait for a queue's consumers to go away.
const settleTimeout = 3 * time.Second

// check opens a channel and looks the queue up (passive declare). A queue
// with consumers is waited on for a moment: a quorum queue removes a closed
// channel's consumer, and puts back the messages it held, a few milliseconds
// after the channel is gone (measured), so the previous operation may just be
// finishing.
func (i *Inspector) check() (*amqp091.Channel, amqp091.Queue, error) {
	ch, err := i.conn.Channel()
	if err != nil {
		return nil, amqp091.Queue{}, fmt.Errorf("open channel: %w", err)
	}
	deadline := time.Now().Add(settleTimeout)
	for {
		q, err := ch.QueueDeclarePassive(i.queue,
			true,  // durable (ignored by a passive declare)
			false, // autoDelete
			false, // exclusive
			false, // noWait
			nil)
		if err != nil {
			// A failed passive declare closes the channel.
			var aerr *amqp091.Error
			if errors.As(err, &aerr) && aerr.Code == amqp091.NotFound {
				return nil, q, fmt.Errorf("%w: %q", ErrNoQueue, i.queue)
			}
			return nil, q, fmt.Errorf("look up queue %q: %w", i.queue, err)
		}
		if q.Consumers == 0 {
			return ch, q, nil
		}
		if time.Now().After(deadline) {
			_ = ch.Close()
			return nil, q, fmt.Errorf("%w: %q has %d consumer(s) (another `worker dlq` command, or a foreign consumer); run one operation at a time",
				ErrBusy, i.queue, q.Consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits (at most settleTimeout) until the queue has no consumers:
// then the messages a closed channel held are back in the queue.
func (i *Inspector) settle() {
	ch, err := i.conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		q, err := ch.QueueDeclarePassive(i.queue, true, false, false, false, nil)
		if err != nil || q.Consumers == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// open starts an operation: it looks the queue up and, when it holds
// messages, consumes it with room for all of them unacknowledged (at most
// MaxScan): whatever an operation does, before it ends it must have been
// delivered every message that went back to the queue earlier (see finish),
// and it cannot know how many there are. The prefetch count must be right
// from the start: on RabbitMQ 3.10 a basic.qos after basic.consume does not
// change the window of a quorum queue consumer (measured).
func (i *Inspector) open() (*scan, error) { return i.openChecking(nil) }

// openChecking is open with a check of its own (Replay's target) that runs
// once the queue is known to exist and hold messages, before the scan
// consumes anything.
func (i *Inspector) openChecking(before func() error) (*scan, error) {
	ch, q, err := i.check()
	if err != nil {
		return nil, err
	}
	s := &scan{Scan: Scan{Queue: i.queue, Depth: q.Messages}, i: i, ch: ch, idle: i.IdleTimeout}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.Depth == 0 {
		return s, nil
	}
	if before != nil {
		if err := before(); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	s.prefetch = min(s.Depth, MaxScan)
	if err := ch.Qos(s.prefetch, 0, false /* global */); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	s.closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	s.deliveries, err = ch.Consume(i.queue, "",
		false, // autoAck: only what the operation removes is acknowledged
		false, // exclusive: quorum queues on RabbitMQ 3.10 ignore it (measured); check refuses a queue with consumers
		false, // noLocal: unsupported by RabbitMQ
		false, // noWait
		nil)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("consume %q: %w", i.queue, err)
	}
	s.consuming = true
	return s, nil
}

// over reports whether the scan can deliver no more messages: it has seen
// every message that was in the queue when it began, or its window is full
// of messages it keeps.
func (s *scan) over() bool {
	if s.Scanned >= s.Depth {
		return true
	}
	if s.held >= s.prefetch {
		s.Incomplete = true
		return true
	}
	return false
}

// next returns the next delivery; ok is false when the scan is over.
func (s *scan) next(ctx context.Context) (d amqp091.Delivery, ok bool, err error) {
	if s.over() {
		return d, false, nil
	}
	// The run's deliveries count against the window the broker fills.
	if err := s.flushAcks(); err != nil {
		return d, false, err
	}
	t := time.NewTimer(s.idle)
	defer t.Stop()
	select {
	case d, ok := <-s.deliveries:
		return s.took(d, ok)
	case <-ctx.Done():
		return d, false, ctx.Err()
	case <-t.C:
		s.Incomplete = true
		return d, false, nil
	}
}

// poll is next without waiting: ok is false when no delivery is there yet.
func (s *scan) poll() (d amqp091.Delivery, ok bool, err error) {
	if s.over() {
		return d, false, nil
	}
	select {
	case d, ok := <-s.deliveries:
		return s.took(d, ok)
	default:
		return d, false, nil
	}
}

func (s *scan) took(d amqp091.Delivery, ok bool) (amqp091.Delivery, bool, error) {
	if !ok {
		cause := errors.New("channel closed")
		select {
		case e := <-s.closed:
			if e != nil {
				cause = e
			}
		default:
		}
		return d, false, fmt.Errorf("reading %q: %w; every message not yet removed is back in the queue", s.Queue, cause)
	}
	s.Scanned++
	s.held++
	if !d.Redelivered {
		s.pastReturned = true
	}
	return d, true, nil
}

// finish reads on, keeping what it reads, until the scan has been delivered
// every message that an earlier operation (or consumer) had put back. A
// quorum queue keeps returned messages in a list that it delivers before the
// others, and appends to that list what a closing channel returns (measured
// on RabbitMQ 3.10.8). If an operation returned messages while part of that
// list was still undelivered, its messages would land behind that part, out
// of order. Returned messages are redelivered, so the first delivery that is
// not marks the end of the list; the end of the queue does too.
func (s *scan) finish() {
	for !s.pastReturned && !s.over() {
		if _, ok, err := s.next(context.Background()); !ok || err != nil {
			return
		}
	}
}

// remove acknowledges d: the broker deletes it from the queue. While every
// delivery before d is removed too, the acknowledgement joins a run that
// flushAcks sends (when the run is full, before the scan waits, and when it
// closes); after the first delivery that stays, each one goes alone, since
// a multiple ack would remove that one too.
func (s *scan) remove(d *amqp091.Delivery) error {
	s.held--
	if d.DeliveryTag == s.acked+1 {
		s.acked = d.DeliveryTag
		s.run++
		if s.run >= ackRun {
			return s.flushAcks()
		}
		return nil
	}
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("acknowledge message %s: %w", d.MessageId, err)
	}
	return nil
}

// flushAcks sends the run of removals not acknowledged yet. A run whose ack
// failed stays unsent, so every later flush fails too: its messages are back
// in the queue with the channel, and whoever tells their fate (commit, Purge's
// tell) must hear so even when the failure came inside remove.
func (s *scan) flushAcks() error {
	if s.run == 0 || s.ch == nil {
		return nil
	}
	if err := s.ch.Ack(s.acked, true /* multiple: every delivery up to acked */); err != nil {
		return fmt.Errorf("acknowledge messages up to delivery %d: %w", s.acked, err)
	}
	s.run = 0
	return nil
}

// close ends the operation (after finish). The broker returns every message
// the operation read and did not remove to the head of the queue, in order,
// also those still on their way to us (measured; a basic.cancel first would
// send those to the tail, so there is none). It first sends the last run of
// removals: a quorum queue can give back deliveries whose single acks came
// in a burst just before the close (see scan.remove), not those of one
// multiple ack. close then waits until the queue shows no
// consumer, when the returned messages are back, so that what runs next sees
// the queue whole.
func (s *scan) close() error {
	if s == nil || s.ch == nil {
		return nil
	}
	ackErr := s.flushAcks()
	if s.consuming {
		s.finish()
	}
	ch := s.ch
	s.ch = nil
	if err := ch.Close(); err != nil && !errors.Is(err, amqp091.ErrClosed) {
		return fmt.Errorf("close channel on %q: %w", s.Queue, err)
	}
	if s.consuming {
		s.i.settle()
	}
	return ackErr
}

// Summary is what List reports.
type Summary struct {
	Scan
	// ByType counts messages per event type.
	ByType map[string]int
	// ByReason counts messages per Reason.
	ByReason map[amqp.Reason]int
	// Unreadable counts messages with headers the AMQP client cannot read
	// (Message.Unreadable): shown without them, still listed, purged and
	// replayed like any other.
	Unreadable int
	// Oldest and Newest are the earliest and latest Message.Time (zero when
	// no message has one).
	Oldest, Newest time.Time
}

// List counts the queue's messages by type and by reason. It reads every
// message (up to MaxScan) and puts all of them back: like Peek, it raises each
// one's delivery count and keeps the order.
func (i *Inspector) List(ctx context.Context) (Summary, error) {
	sum := Summary{ByType: map[string]int{}, ByReason: map[amqp.Reason]int{}}
	s, err := i.open()
	if err != nil {
		return sum, err
	}
	defer func() { _ = s.close() }()
	for {
		d, ok, err := s.next(ctx)
		if err != nil {
			sum.Scan = s.Scan
			return sum, err
		}
		if !ok {
			break
		}
		m := ReadMessage(&d, i.unrouted)
		sum.ByType[m.Type]++
		sum.ByReason[m.Reason]++
		if m.Unreadable != "" {
			sum.Unreadable++
		}
		if !m.Time.IsZero() {
			if sum.Oldest.IsZero() || m.Time.Before(sum.Oldest) {
				sum.Oldest = m.Time
			}
			if m.Time.After(sum.Newest) {
				sum.Newest = m.Time
			}
		}
	}
	s.finish()
	sum.Scan = s.Scan
	return sum, nil
}

// PeekOptions select what Peek shows.
type PeekOptions struct {
	Filter
	// Limit is the most messages returned; 0 means no limit.
	Limit int
}

// PeekResult is what Peek found.
type PeekResult struct {
	Scan
	// Messages are the selected messages, head of the queue first.
	Messages []Message
}

// Peek returns the messages opt selects, in queue order, and leaves every
// message in the queue, in its order. Each message it read (all of them up to
// the last one returned, or every message when a filter selects few) has its
// delivery count raised by one and is marked redelivered.
func (i *Inspector) Peek(ctx context.Context, opt PeekOptions) (PeekResult, error) {
	var res PeekResult
	if err := opt.validate(); err != nil {
		return res, err
	}
	if opt.Limit < 0 {
		return res, fmt.Errorf("%w: limit must not be negative, got %d", ErrInvalidOptions, opt.Limit)
	}
	s, err := i.open()
	if err != nil {
		return res, err
	}
	defer func() { _ = s.close() }()
	now := time.Now()
	for opt.Limit == 0 || len(res.Messages) < opt.Limit {
		d, ok, err := s.next(ctx)
		if err != nil {
			res.Scan = s.Scan
			return res, err
		}
		if !ok {
			break
		}
		if m := ReadMessage(&d, i.unrouted); opt.Match(m, now) {
			res.Messages = append(res.Messages, m)
		}
	}
	s.finish()
	res.Scan = s.Scan
	return res, nil
}

// PurgeOptions select what Purge deletes.
type PurgeOptions struct {
	Filter
	// OnPurge, when set, is called for each message deleted by a filtered
	// purge, after the broker was told to delete it.
	OnPurge func(Message)
}

// PurgeResult is what Purge did.
type PurgeResult struct {
	Scan
	// Purged is how many messages were deleted.
	Purged int
}

// Purge deletes the messages opt selects. With the zero Filter it purges the
// whole queue at once (queue.purge; every ready message, also those that
// arrived since a List or Peek). With a filter it reads the queue, deletes
// what matches and leaves the rest in order.
func (i *Inspector) Purge(ctx context.Context, opt PurgeOptions) (PurgeResult, error) {
	var res PurgeResult
	if err := opt.validate(); err != nil {
		return res, err
	}
	if opt.Filter.IsZero() {
		ch, q, err := i.check()
		if err != nil {
			return res, err
		}
		defer ch.Close()
		res.Scan = Scan{Queue: i.queue, Depth: q.Messages}
		n, err := ch.QueuePurge(i.queue, false /* noWait */)
		if err != nil {
			return res, fmt.Errorf("purge %q: %w", i.queue, err)
		}
		res.Purged, res.Scanned = n, n
		return res, nil
	}
	s, err := i.open()
	if err != nil {
		return res, err
	}
	defer func() { _ = s.close() }()
	err = i.purgeSelected(ctx, s, opt, &res)
	cerr := s.close()
	res.Scan = s.Scan
	if err == nil && cerr != nil {
		err = fmt.Errorf("%w (the deletions may not all have taken effect)", cerr)
	}
	return res, err
}

func (i *Inspector) purgeSelected(ctx context.Context, s *scan, opt PurgeOptions, res *PurgeResult) error {
	// OnPurge hears of a message once its acknowledgement is sent: the
	// scan sends them in runs.
	var told []Message
	tell := func() error {
		if err := s.flushAcks(); err != nil {
			res.Purged -= len(told) // back in the queue with the channel
			return err
		}
		if opt.OnPurge != nil {
			for _, m := range told {
				opt.OnPurge(m)
			}
		}
		told = told[:0]
		return nil
	}
	now := time.Now()
	for {
		d, ok, err := s.next(ctx)
		if err != nil || !ok {
			if terr := tell(); err == nil {
				err = terr
			}
			return err
		}
		m := ReadMessage(&d, i.unrouted)
		if !opt.Match(m, now) {
			continue
		}
		if err := s.remove(&d); err != nil {
			return errors.Join(err, tell())
		}
		res.Purged++
		told = append(told, m)
		if len(told) >= ackRun {
			if err := tell(); err != nil {
				return err
			}
		}
	}
}
