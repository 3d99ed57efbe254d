package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
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
	// Err says why a message was kept: it wraps amqp.ErrReturned,
	// amqp.ErrNacked, ErrUnconfirmed, ErrBodyWithheld or
	// amqp.ErrHeadersTooLarge.
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

// replayWindow is how many replayed copies may await their confirm.
const replayWindow = 128

// confirmTimeout bounds the wait for one copy's confirm, and for the
// Publisher to take it.
const confirmTimeout = 30 * time.Second

// keptKinds are the errors KeptError keeps one example of.
var keptKinds = []error{amqp.ErrReturned, amqp.ErrNacked, ErrUnconfirmed, ErrBodyWithheld, amqp.ErrHeadersTooLarge}

// Replay sends the messages opt selects to the Inspector's target, oldest
// first: to the app's queue through the app's exchange (ForApp), or to the
// exchange with the original routing key (ForUnrouted). Each copy is
// published as mandatory and persistent with a publisher confirm, with fresh
// headers (see ReplayPublishing), through the Inspector's Publisher, many at
// a time; only after the broker confirmed a copy, and did not return it as
// unroutable, is its original removed from the queue. An interrupted replay
// (a killed process, a lost connection) therefore loses nothing; at worst a
// message is both in the target and still in the queue, and is delivered
// twice. Messages not selected, and selected messages whose copy was
// returned or refused, stay in the queue in their order.
//
// The error is nil when every selected message was replayed; otherwise it
// wraps amqp.ErrReturned, amqp.ErrNacked or ErrUnconfirmed (per message in
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
	case !opt.DryRun && i.Publisher == nil:
		return res, fmt.Errorf("%w: Replay needs the Inspector's Publisher to send its copies", ErrInvalidOptions)
	}
	// The target is checked after the queue (a mistyped APP_NAME is "no
	// such queue", not "no target") and before the scan consumes anything.
	var target func() error
	if !opt.DryRun && !i.unrouted {
		target = i.checkTarget
	}
	s, err := i.openChecking(target)
	if err != nil {
		return res, err
	}
	defer func() { _ = s.close() }()
	r := &replayer{i: i, s: s, opt: opt, res: &res}
	err = r.run(ctx)
	// Settle what is in flight before the scan's channel closes, also when
	// ctx ended: a confirmed copy whose original is not removed would be a
	// needless duplicate.
	if ferr := r.flush(); err == nil {
		err = ferr
	}
	if cerr := r.commit(); err == nil {
		err = cerr
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
// replayed and stay in the queue. errors.Is finds amqp.ErrReturned,
// amqp.ErrNacked, ErrUnconfirmed and ErrBodyWithheld through it.
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

// inflight is a published copy awaiting its confirm, or (f nil) a message
// kept without being sent, whose fate waits behind the copies before it so
// that OnMessage hears of it in queue order.
type inflight struct {
	d   amqp091.Delivery
	m   Message
	f   *amqp.InFlight
	err error // why a message with f nil is kept
}

// replayer is one Replay's state; only Replay's goroutine uses it.
type replayer struct {
	i       *Inspector
	s       *scan
	opt     ReplayOptions
	res     *ReplayResult
	pending []*inflight // publish order, oldest first
	// outbox holds the fates known but not yet told (OnMessage, the
	// counts): a replayed message is told once its removal is
	// acknowledged (the scan acknowledges removals in runs; see commit).
	outbox   []ReplayedMessage
	selected int
	keptErrs []error
	nextAt   time.Time // rate limit: earliest time of the next publish
	// broken is set once a copy could not be confirmed (the Publisher
	// stopped, or no answer in confirmTimeout): the copies after it are
	// settled with what is already known, without waiting again.
	broken bool
}

func (r *replayer) run(ctx context.Context) error {
	now := time.Now()
	for r.opt.Limit == 0 || r.selected < r.opt.Limit {
		if err := r.commit(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := r.s.poll()
		if err == nil && !ok {
			// Nothing there yet: settle the copies the broker has
			// answered for, but do not wait for the others unless they
			// hold the scan's whole window. Gaps between deliveries are
			// common and shorter than a confirm: waiting out every copy
			// in each of them made a replay go at one confirm round
			// trip per gap (docs/design.md).
			if err := r.settleReady(); err != nil {
				return err
			}
			if r.s.held >= r.s.prefetch {
				if err := r.flush(); err != nil {
					return err
				}
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
		// A full window waits for its oldest copy only, so that the
		// broker always has a window's worth to confirm.
		if len(r.pending) >= replayWindow {
			if err := r.settleOldest(); err != nil {
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
		if err := r.commit(); err != nil {
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
	exchange, key := r.i.exchange, r.i.key
	if key == "" { // to the exchange: the event's original routing key
		key = m.RoutingKey
		if key == "" {
			key = d.Type // publishers route by event type
		}
	}
	if key == "" {
		r.keep(m, fmt.Errorf("%w: message %s says nothing about its routing key", amqp.ErrReturned, m.ID))
		return nil
	}
	if m.WithheldBody > 0 {
		r.keep(m, fmt.Errorf("%w: message %s has a body of %d bytes, over the connection's body limit", ErrBodyWithheld, m.ID, m.WithheldBody))
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	f, err := r.i.Publisher.SendMessage(sctx, exchange, key, ReplayPublishing(&d, m))
	cancel()
	switch {
	case errors.Is(err, amqp.ErrHeadersTooLarge):
		r.keep(m, fmt.Errorf("message %s: %w", m.ID, err))
		return nil
	case err != nil:
		return fmt.Errorf("publish message %s to %s: %w", m.ID, r.i.Target(), err)
	}
	r.pending = append(r.pending, &inflight{d: d, m: m, f: f})
	return nil
}

// keep keeps a message that is not sent, after the copies still in flight.
func (r *replayer) keep(m Message, err error) {
	if len(r.pending) == 0 {
		r.kept(m, err)
		return
	}
	r.pending = append(r.pending, &inflight{m: m, err: err})
}

// settleReady settles the oldest copies in flight whose answer is there.
func (r *replayer) settleReady() error {
	for len(r.pending) > 0 && (r.pending[0].f == nil || r.pending[0].f.Ready()) {
		if err := r.settleOldest(); err != nil {
			return err
		}
	}
	return nil
}

// flush settles every copy in flight.
func (r *replayer) flush() error {
	var first error
	for len(r.pending) > 0 {
		if err := r.settleOldest(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// settleOldest waits for the oldest copy's confirm, then removes its original
// if the broker confirmed the copy and did not return it. The error says
// that the replay cannot go on.
func (r *replayer) settleOldest() error {
	p := r.pending[0]
	r.pending = r.pending[1:]
	if p.f == nil {
		r.kept(p.m, p.err)
		return nil
	}
	wctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	if r.broken {
		cancel() // only what is known already
	}
	err := p.f.Wait(wctx)
	cancel()
	switch {
	case err == nil:
		if err := r.s.remove(&p.d); err != nil {
			r.kept(p.m, fmt.Errorf("%w: %v (the message is in %s and back in %q: a duplicate)", ErrUnconfirmed, err, r.i.Target(), r.i.queue))
			return nil
		}
		r.done(ReplayedMessage{Message: p.m, Outcome: OutcomeReplayed})
		return nil
	case errors.Is(err, amqp.ErrReturned), errors.Is(err, amqp.ErrNacked):
		r.kept(p.m, fmt.Errorf("replay to %s: %w", r.i.Target(), err))
		return nil
	case r.broken:
		r.kept(p.m, fmt.Errorf("%w: message %s (an earlier copy was not confirmed either)", ErrUnconfirmed, p.m.ID))
		return nil
	default:
		r.broken = true
		err = fmt.Errorf("%w: message %s to %s: %v; the originals in flight stay in %q", ErrUnconfirmed, p.m.ID, r.i.Target(), err, r.i.queue)
		r.kept(p.m, err)
		return err
	}
}

func (r *replayer) kept(m Message, err error) {
	r.noteKept(err)
	r.done(ReplayedMessage{Message: m, Outcome: OutcomeKept, Err: err})
}

// noteKept counts a kept message and keeps the first error of each kind.
func (r *replayer) noteKept(err error) {
	r.res.Kept++
	known := false
	for _, e := range r.keptErrs {
		for _, kind := range keptKinds {
			known = known || (errors.Is(e, kind) && errors.Is(err, kind))
		}
	}
	if !known {
		r.keptErrs = append(r.keptErrs, err)
	}
}

func (r *replayer) done(rm ReplayedMessage) { r.outbox = append(r.outbox, rm) }

// commit acknowledges the removals not yet acknowledged, then tells the
// fates in the outbox, in queue order. A message whose acknowledgement
// failed is back in the queue after its copy reached the target: kept, a
// duplicate.
func (r *replayer) commit() error {
	if len(r.outbox) == 0 {
		return nil
	}
	ackErr := r.s.flushAcks()
	for _, rm := range r.outbox {
		if rm.Outcome == OutcomeReplayed && ackErr != nil {
			rm.Outcome = OutcomeKept
			rm.Err = fmt.Errorf("%w: %v (the message is in %s and back in %q: a duplicate)", ErrUnconfirmed, ackErr, r.i.Target(), r.i.queue)
			r.noteKept(rm.Err)
		}
		if rm.Outcome != OutcomeKept {
			r.res.Replayed++
		}
		if r.opt.OnMessage != nil {
			r.opt.OnMessage(rm)
		}
	}
	r.outbox = r.outbox[:0]
	return ackErr
}

// checkTarget checks, with a passive declare (which needs no permission),
// that the app's exchange a ForApp replay publishes to exists: a publish to
// a missing exchange would close the Publisher's channel on every copy,
// again and again, instead of failing once. After an upgrade it exists as
// soon as one worker of this version has started.
func (i *Inspector) checkTarget() error {
	ch, err := i.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	err = ch.ExchangeDeclarePassive(i.exchange, amqp091.ExchangeDirect,
		true,  // durable (ignored by a passive declare)
		false, // autoDelete
		false, // internal
		false, // noWait
		nil)
	var aerr *amqp091.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp091.NotFound:
		// The failed declare closed the channel.
		return fmt.Errorf("%w: exchange %q, where the replay of %q goes, does not exist; "+
			"a worker of this version declares it when it starts: start one first", ErrNoTarget, i.exchange, i.queue)
	case err != nil:
		return fmt.Errorf("look up exchange %q: %w", i.exchange, err)
	}
	return ch.Close()
}
