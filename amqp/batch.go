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
	if p.cfg.SendOnly {
		return errSendOnly
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.life.Leave()
	b := batch{p: p, ctx: ctx, evs: evs, errs: make([]error, len(evs))}
	for i := range evs {
		_, span, msg, err := p.prepare(ctx, &evs[i])
		if err != nil {
			b.errs[i] = err
			continue
		}
		it := &batchItem{i: i, span: span, msg: msg}
		if err := checkHeaders(it.msg); err != nil {
			b.finish(it, published{}, err)
			continue
		}
		it.began = time.Now()
		b.send(it)
		b.collect(false)
	}
	b.collect(true)
	// Events whose connection died before their confirm go again, on the
	// next connection, for as long as ctx allows.
	for len(b.again) > 0 {
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
		b.collect(true)
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

// batch is the state of one PublishBatch call; only its goroutine uses it.
type batch struct {
	p     *Publisher
	ctx   context.Context
	evs   []event.Event
	errs  []error
	sent  []*batchItem // awaiting their confirm, oldest first
	again []*batchItem // lost with a connection: to be sent again
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
	b.errs[it.i] = err
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
// wait, all of them (or until ctx ends). Settling as we go keeps the memory
// of a large batch to about the window.
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
