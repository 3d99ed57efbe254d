package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Outcome is what Replay did with one selected message.
type Outcome string

// Outcomes of Replay.
const (
	// OutcomeReplayed: the target confirmed the copy, then the message was
	// removed from the queue.
	OutcomeReplayed Outcome = "replayed"
	// OutcomeDryRun: selected by a dry run; nothing was sent or removed.
	OutcomeDryRun Outcome = "would replay"
	// OutcomeKept: the copy was not confirmed, returned unroutable or
	// refused; the message stays in the queue, in its place. Err says why.
	OutcomeKept Outcome = "kept"
)

// ReplayedMessage is the fate of one selected message.
type ReplayedMessage struct {
	Message Message
	Outcome Outcome
	// Err says why a message was kept: it wraps ErrReturned, ErrNacked,
	// ErrUnconfirmed or ErrBodyWithheld.
	Err error
}

// ReplayOptions select what Replay sends, and how fast.
type ReplayOptions struct {
	Filter
	// Limit is the most messages replayed; 0 means no limit.
	Limit int
	// Rate is the most messages published per second; 0 means as fast as
	// the broker confirms them.
	Rate float64
	// DryRun reads and selects as a replay would, but sends and removes
	// nothing (like Peek, it raises the delivery counts of what it read).
	DryRun bool
	// OnMessage, when set, is called for each selected message once its
	// fate is known, in queue order.
	OnMessage func(ReplayedMessage)
}

// ReplayResult is what Replay did.
type ReplayResult struct {
	Scan
	// Target is where messages went (Inspector.Target).
	Target string
	// Replayed counts messages replayed (in a dry run: that would be).
	Replayed int
	// Kept counts selected messages that stay in the queue.
	Kept int
}

// replayWindow is how many replayed messages may await their confirm.
const replayWindow = 128

// confirmTimeout bounds the wait for one confirm.
const confirmTimeout = 30 * time.Second

// Replay sends the messages opt selects to the Inspector's target, oldest
// first: to the app's queue through the default exchange (ForApp), or to the
// exchange with the original routing key (ForUnrouted). Each copy is
// published as mandatory and persistent with a publisher confirm, with fresh
// headers (see ReplayPublishing); only after the broker confirmed it, and did
// not return it as unroutable, is the original removed from the queue. An
// interrupted replay (a killed process, a lost connection) therefore loses
// nothing; at worst a message is both in the target and still in the queue,
// and is delivered twice. Messages not selected, and selected messages whose
// copy was returned or refused, stay in the queue in their order.
//
// The error is nil when every selected message was replayed; otherwise it
// wraps ErrReturned, ErrNacked or ErrUnconfirmed (per message in
// OnMessage), or says why the replay stopped early (e.g. ctx ended).
func (i *Inspector) Replay(ctx context.Context, opt ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{Target: i.Target()}
	if err := opt.validate(); err != nil {
		return res, err
	}
	switch {
	case opt.Limit < 0:
		return res, fmt.Errorf("%w: limit must not be negative, got %d", ErrInvalidOptions, opt.Limit)
	case opt.Rate < 0:
		return res, fmt.Errorf("%w: rate must not be negative, got %v", ErrInvalidOptions, opt.Rate)
	}
	s, err := i.open()
	if err != nil {
		return res, err
	}
	defer func() { _ = s.close() }()
	r := &replayer{i: i, s: s, opt: opt, res: &res}
	if !opt.DryRun {
		if err := r.openPublisher(); err != nil {
			return res, err
		}
		defer func() { _ = r.pch.Close() }()
	}
	err = r.run(ctx)
	// Settle what is in flight before the channel closes: a confirmed copy
	// whose original is not removed would be a needless duplicate.
	if ferr := r.flush(); err == nil {
		err = ferr
	}
	cerr := s.close()
	res.Scan = s.Scan
	if err == nil && cerr != nil {
		err = fmt.Errorf("%w (replayed messages may still be in %q too)", cerr, i.queue)
	}
	if err == nil && res.Kept > 0 {
		err = &KeptError{Queue: i.queue, Kept: res.Kept, Selected: r.selected, Errs: r.keptErrs}
	}
	return res, err
}

// KeptError is Replay's error when some selected messages could not be
// replayed and stay in the queue. errors.Is finds ErrReturned, ErrNacked and
// ErrUnconfirmed through it.
type KeptError struct {
	Queue          string
	Kept, Selected int
	// Errs holds the first error of each kind.
	Errs []error
}

func (e *KeptError) Error() string {
	msg := fmt.Sprintf("%d of %d selected messages kept in %q", e.Kept, e.Selected, e.Queue)
	if len(e.Errs) > 0 {
		msg += "; first: " + e.Errs[0].Error()
	}
	return msg
}

// Unwrap returns the first error of each kind.
func (e *KeptError) Unwrap() []error { return e.Errs }

// inflight is a published copy awaiting its confirm.
type inflight struct {
	d        amqp091.Delivery
	m        Message
	seq      uint64
	exchange string
	key      string
	returned *amqp091.Return
}

type replayer struct {
	i        *Inspector
	s        *scan
	opt      ReplayOptions
	res      *ReplayResult
	pch      *amqp091.Channel
	confirms chan amqp091.Confirmation
	returns  chan amqp091.Return
	pending  []*inflight
	selected int
	keptErrs []error
	nextAt   time.Time // rate limit: earliest time of the next publish
}

func (r *replayer) openPublisher() error {
	ch, err := r.i.conn.Channel()
	if err != nil {
		return fmt.Errorf("open publishing channel: %w", err)
	}
	if err := ch.Confirm(false /* noWait */); err != nil {
		_ = ch.Close()
		return fmt.Errorf("confirm mode: %w", err)
	}
	// Room for every notification of a full window: amqp091-go blocks (and
	// after 5 s drops) notifications that a listener does not take.
	n := 2*replayWindow + 16
	r.confirms = ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	r.returns = ch.NotifyReturn(make(chan amqp091.Return, n))
	r.pch = ch
	return nil
}

func (r *replayer) run(ctx context.Context) error {
	now := time.Now()
	for r.opt.Limit == 0 || r.selected < r.opt.Limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := r.s.poll()
		if err == nil && !ok {
			// Nothing there yet: settle what is in flight (which may also
			// free window room) before waiting.
			if err := r.flush(); err != nil {
				return err
			}
			d, ok, err = r.s.next(ctx)
		}
		if err != nil || !ok {
			return err
		}
		m := ReadMessage(&d, r.i.unrouted)
		if !r.opt.Match(m, now) {
			continue // stays, in its place
		}
		r.selected++
		if r.opt.DryRun {
			r.done(ReplayedMessage{Message: m, Outcome: OutcomeDryRun})
			continue
		}
		if err := r.pace(ctx); err != nil {
			return err
		}
		if err := r.publish(ctx, d, m); err != nil {
			return err
		}
		if len(r.pending) >= replayWindow {
			if err := r.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// pace waits for the rate limit, settling what is in flight first.
func (r *replayer) pace(ctx context.Context) error {
	if r.opt.Rate <= 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) / r.opt.Rate)
	now := time.Now()
	if wait := r.nextAt.Sub(now); wait > 0 {
		if err := r.flush(); err != nil {
			return err
		}
		t := time.NewTimer(time.Until(r.nextAt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		r.nextAt = r.nextAt.Add(interval)
		return nil
	}
	r.nextAt = now.Add(interval)
	return nil
}

func (r *replayer) publish(ctx context.Context, d amqp091.Delivery, m Message) error {
	p := &inflight{d: d, m: m, exchange: r.i.exchange, key: r.i.key}
	if p.key == "" { // to the exchange: the event's original routing key
		p.key = m.RoutingKey
		if p.key == "" {
			p.key = d.Type // publishers route by event type
		}
	}
	if p.key == "" {
		r.kept(m, fmt.Errorf("%w: message %s says nothing about its routing key", ErrReturned, m.ID))
		return nil
	}
	if m.WithheldBody > 0 {
		r.kept(m, fmt.Errorf("%w: message %s has a body of %d bytes, over the connection's body limit", ErrBodyWithheld, m.ID, m.WithheldBody))
		return nil
	}
	p.seq = r.pch.GetNextPublishSeqNo()
	err := r.pch.PublishWithContext(ctx, p.exchange, p.key,
		true,  // mandatory: an unroutable copy comes back, and the original stays
		false, // immediate: unsupported by RabbitMQ
		ReplayPublishing(&d, m))
	if err != nil {
		return fmt.Errorf("publish message %s to %s: %w", m.ID, r.i.Target(), err)
	}
	r.pending = append(r.pending, p)
	return nil
}

// flush waits for the confirm of every copy in flight, then removes each
// original whose copy was confirmed and not returned.
func (r *replayer) flush() error {
	for len(r.pending) > 0 {
		t := time.NewTimer(confirmTimeout)
		var c amqp091.Confirmation
		var ok bool
		select {
		case c, ok = <-r.confirms:
		case <-t.C:
		}
		t.Stop()
		if !ok {
			err := fmt.Errorf("%w: the broker did not confirm %d copies (connection lost or no answer in %v); the originals stay in %q",
				ErrUnconfirmed, len(r.pending), confirmTimeout, r.i.queue)
			for _, p := range r.pending {
				r.kept(p.m, err)
			}
			r.pending = nil
			return err
		}
		// The broker sends basic.return before the basic.ack of the same
		// message and amqp091-go hands both over in that order: take every
		// return already there before resolving the ack.
		r.drainReturns()
		p := r.pending[0]
		r.pending = r.pending[1:]
		switch {
		case c.DeliveryTag != p.seq:
			// Confirms come in publish order; anything else is a bug.
			r.kept(p.m, fmt.Errorf("%w: confirm %d does not match publish %d", ErrUnconfirmed, c.DeliveryTag, p.seq))
		case !c.Ack:
			r.kept(p.m, fmt.Errorf("%w: message %s to %s", ErrNacked, p.m.ID, r.i.Target()))
		case p.returned != nil:
			r.kept(p.m, fmt.Errorf("%w: message %s to %s with key %q: %s", ErrReturned, p.m.ID, r.i.Target(), p.key, p.returned.ReplyText))
		default:
			if err := r.s.remove(&p.d); err != nil {
				r.kept(p.m, fmt.Errorf("%w: %v (the message is in %s and back in %q: a duplicate)", ErrUnconfirmed, err, r.i.Target(), r.i.queue))
				continue
			}
			r.res.Replayed++
			r.done(ReplayedMessage{Message: p.m, Outcome: OutcomeReplayed})
		}
	}
	return nil
}

// drainReturns matches the returns that have arrived to the oldest copy in
// flight with the same exchange, routing key and id: returns carry no
// sequence number, but come in publish order.
func (r *replayer) drainReturns() {
	for {
		select {
		case ret, ok := <-r.returns:
			if !ok {
				return
			}
			for _, p := range r.pending {
				if p.returned == nil && p.exchange == ret.Exchange && p.key == ret.RoutingKey && p.m.ID == ret.MessageId {
					p.returned = &ret
					break
				}
			}
		default:
			return
		}
	}
}

func (r *replayer) kept(m Message, err error) {
	r.res.Kept++
	known := false
	for _, e := range r.keptErrs {
		for _, kind := range []error{ErrReturned, ErrNacked, ErrUnconfirmed, ErrBodyWithheld} {
			known = known || (errors.Is(e, kind) && errors.Is(err, kind))
		}
	}
	if !known {
		r.keptErrs = append(r.keptErrs, err)
	}
	r.done(ReplayedMessage{Message: m, Outcome: OutcomeKept, Err: err})
}

func (r *replayer) done(rm ReplayedMessage) {
	if rm.Outcome == OutcomeDryRun {
		r.res.Replayed++
	}
	if r.opt.OnMessage != nil {
		r.opt.OnMessage(rm)
	}
}
