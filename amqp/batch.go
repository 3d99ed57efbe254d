package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
)

// BatchError reports which events of a PublishBatch failed. Errs has one entry
// per event, nil for those that were confirmed.
type BatchError struct {
	Errs   []error
	Failed int
}

func (e *BatchError) Error() string {
	for _, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("%d of %d events not confirmed; first error: %v", e.Failed, len(e.Errs), err)
		}
	}
	return "no error"
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error { return e.Errs }

// PublishBatch publishes all events, pipelined within the window, and waits for
// every confirm. It returns nil when all were confirmed, or a *BatchError that
// says which were not. IDs that were empty are filled in evs, so the caller
// can report them.
//
// The events are sent from the calling goroutine, as a hand-written confirm
// loop would: a goroutine per event (the obvious way, since each event may
// need republishing on its own) cost a fifth of the throughput.
func (p *Publisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	return p.PublishOrdered(ctx, evs, nil)
}

// PublishOrdered is PublishBatch with an order: evs[i] is sent only once
// evs[after[i]] is confirmed (after[i] < 0: at once; after[i] < i), so that
// one aggregate's events reach the queue in order while other aggregates'
// events fill the window meanwhile. An event whose predecessor was not
// confirmed is not sent: its error is ErrNotSent. A nil after sends every
// event at once.
func (p *Publisher) PublishOrdered(ctx context.Context, evs []event.Event, after []int) error {
	if p.cfg.SendOnly {
		return errSendOnly
	}
	if after != nil && len(after) != len(evs) {
		return fmt.Errorf("amqp: PublishOrdered: %d events but %d links", len(evs), len(after))
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.life.Leave()
	b := batch{p: p, ctx: ctx, evs: evs, errs: make([]error, len(evs))}
	if after == nil {
		b.ready = make([]int, len(evs))
		for i := range b.ready {
			b.ready[i] = i
		}
	} else {
		b.follow = make([][]int, len(evs))
		for i, a := range after {
			switch {
			case a < 0:
				b.ready = append(b.ready, i)
			case a >= i:
				return fmt.Errorf("amqp: PublishOrdered: event %d follows event %d, which is not before it", i, a)
			default:
				b.follow[a] = append(b.follow[a], i)
			}
		}
	}
	for len(b.ready) > 0 || len(b.sent) > 0 || len(b.again) > 0 {
		switch {
		case len(b.ready) > 0:
			i := b.ready[0]
			b.ready = b.ready[1:]
			b.start(i)
			b.collect(false)
		case len(b.sent) > 0:
			b.collect(true)
		default:
			// Events whose connection died before their confirm go again, on
			// the next connection, for as long as ctx allows.
			items := b.again
			b.again = nil
			for _, it := range items {
				if err := ctx.Err(); err != nil {
					b.finish(it, published{}, fmt.Errorf("message %s not confirmed: %w", it.msg.MessageId, err))
					continue
				}
				b.send(it)
				b.collect(false)
			}
		}
	}
	failed := 0
	for _, err := range b.errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return &BatchError{Errs: b.errs, Failed: failed}
	}
	return nil
}

// start prepares event i and sends it.
func (b *batch) start(i int) {
	_, span, msg, err := b.p.prepare(b.ctx, &b.evs[i])
	if err != nil {
		b.settle(i, err)
		return
	}
	it := &batchItem{i: i, span: span, msg: msg}
	if err := checkHeaders(it.msg); err != nil {
		b.finish(it, published{}, err)
		return
	}
	it.began = time.Now()
	b.send(it)
}

// batch is the state of one PublishOrdered call; only its goroutine uses it.
type batch struct {
	p      *Publisher
	ctx    context.Context
	evs    []event.Event
	errs   []error
	ready  []int        // events to send now, in order
	follow [][]int      // event → the events that wait for its confirm (nil: none wait)
	sent   []*batchItem // awaiting their confirm, oldest first
	again  []*batchItem // lost with a connection: to be sent again
}

type batchItem struct {
	i     int // index in evs
	span  trace.Span
	msg   amqp091.Publishing
	began time.Time
	rec   *pending
}

func (b *batch) finish(it *batchItem, res published, err error) {
	b.p.record(it.span, b.evs[it.i].Type, res, err)
	b.settle(it.i, err)
}

// settle records event i's fate: its followers are sent now if it was
// confirmed, and never if it was not.
func (b *batch) settle(i int, err error) {
	b.errs[i] = err
	if b.follow == nil {
		return
	}
	next := b.follow[i]
	b.follow[i] = nil
	if err == nil {
		b.ready = append(b.ready, next...)
		return
	}
	for _, j := range next {
		b.settle(j, fmt.Errorf("%w (event %s)", ErrNotSent, b.evs[i].ID))
	}
}

// send publishes one item within the window. Its fate arrives on it.rec.done.
func (b *batch) send(it *batchItem) {
	p := b.p
	if err := p.acquire(b.ctx); err != nil {
		b.finish(it, published{}, err)
		return
	}
	s, err := p.session(b.ctx, p.cfg.Exchange, b.evs[it.i].Type)
	if err != nil {
		p.release()
		b.finish(it, published{}, err)
		return
	}
	it.rec = &pending{exchange: p.cfg.Exchange, key: b.evs[it.i].Type, msg: it.msg, keepUnrouted: true,
		done: make(chan error, 1), slots: p.slots}
	if err := s.publish(b.ctx, it.rec); err != nil {
		if errors.Is(err, errConnLost) {
			b.again = append(b.again, it)
			return
		}
		b.finish(it, published{}, err)
		return
	}
	b.sent = append(b.sent, it)
}

// collect settles the items at the head of sent whose fate is known; with
// wait, it first waits for the oldest (or until ctx ends), whose confirm
// may free its followers. Settling as we go keeps the memory of a large
// batch to about the window.
func (b *batch) collect(wait bool) {
	for len(b.sent) > 0 {
		it := b.sent[0]
		var err error
		select {
		case err = <-it.rec.done:
		default:
			if !wait {
				return
			}
			select {
			case err = <-it.rec.done:
			case <-b.ctx.Done():
				err = fmt.Errorf("message %s not confirmed: %w", it.msg.MessageId, b.ctx.Err())
			}
		}
		b.sent = b.sent[1:]
		wait = false
		switch {
		case errors.Is(err, errConnLost):
			b.again = append(b.again, it)
		case b.ctx.Err() != nil && err != nil:
			b.finish(it, published{}, err)
		default:
			// rec.unrouted was written before rec.done was sent.
			b.finish(it, published{unrouted: it.rec.unrouted, took: time.Since(it.began)}, err)
		}
	}
}
