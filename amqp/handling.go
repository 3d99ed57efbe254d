package amqp

import (
	"context"
	"errors"
	"log/slog"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
	"github.com/eventfleet/eventfleet/tracing"
)

// handleLoop is one of the Concurrency handler loops. Each runs the handlers
// of the deliveries it takes on its own goroutine; a loop whose handler
// overruns its timeout is abandoned by its slot (see handlerSlot), which
// starts a new loop in its place.
func (w *Worker) handleLoop() {
	s := newSlot(w.cfg.HandlerTimeout, w.hardStop(), w.handler, w.abandoned)
	for j := range w.jobs {
		if w.process(j, s) {
			// The slot settled the delivery, and the new loop took this
			// one's place in w.loops: Stop no longer waits for it.
			return
		}
		w.m.InFlight(-1)
		w.inflight.Done() // added by serve
	}
	s.close()
	w.loops.Done()
}

// abandoned settles the delivery of a call its slot gave up on, and starts a
// new handler loop in place of the stuck one.
func (w *Worker) abandoned(c *handlerCall, err error) {
	w.conclude(c, err)
	w.m.InFlight(-1)
	w.inflight.Done() // added by serve
	// The new loop takes over the stuck one's count in w.loops (no Add: Stop
	// may be waiting on it already), only now, so that the Worker does not
	// finish while the delivery is being settled. After Stop it finds
	// w.jobs closed and ends at once.
	go w.handleLoop()
}

// process runs one delivery to its end: handler, then ack or hop. It reports
// whether the handler was abandoned; the slot settles the delivery then.
func (w *Worker) process(j job, s *handlerSlot) (abandoned bool) {
	d := &j.d
	ev, err := decode(d, w.cfg.MaxBody)
	// The handler continues the publisher's trace, carried in the headers.
	ctx, span := w.startSpan(d, &ev)
	if err != nil {
		w.undecodable(ctx, span, j, ev, err)
		span.End()
		return false
	}
	c := handlerCall{j: j, ev: ev, ctx: ctx, span: span, began: time.Now()}
	abandoned, err = s.call(&c)
	if abandoned {
		return true
	}
	w.conclude(&c, err)
	return false
}

// conclude settles a delivery whose handler returned err (or was abandoned
// with err), and ends its span.
func (w *Worker) conclude(c *handlerCall, err error) {
	j, ev, ctx, span := c.j, c.ev, c.ctx, c.span
	defer span.End()
	d := &j.d
	// Built only on the failure paths: the success path logs nothing, and a
	// logger per message is a measurable cost on it.
	log := func() *slog.Logger { return w.eventLog(span, ev) }
	w.m.Handled(ev.Type, time.Since(c.began))
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case err == nil:
		j.s.acks.ack(d.DeliveryTag)
		w.handled.Add(1)
		w.settled(span, ev.Type, metrics.Ack)
	case w.hardStop().Err() != nil:
		// Hard stop: leave it unacked; it goes back to the queue.
	case retry.IsPermanent(err):
		log().Warn("permanent failure; dead-lettering", "err", err)
		w.hop(ctx, j, ev, ReasonPermanent, 0, err)
	default:
		delay, dead := w.cfg.Retry.Next(ev.Attempt)
		if dead {
			log().Warn("attempts exhausted; dead-lettering", "err", err, "max_attempts", w.cfg.Retry.MaxAttempts)
			w.hop(ctx, j, ev, ReasonExhausted, 0, err)
			return
		}
		log().Info("handler failed; retrying later", "err", err, "delay", delay.String())
		w.hop(ctx, j, ev, "", delay, err)
	}
}

// undecodable dead-letters a delivery no handler can use. Most are moved
// with a confirmed hop that records why (the body is at most MaxBody). One
// whose body the connection withheld (over MaxBody) has no body to publish:
// it is rejected, and the app queue's dead-lettering moves the message,
// unchanged, to the dead-letter queue, so nothing is held or uploaded again.
// That move is at least once on a quorum app queue; a classic queue
// dead-letters at most once (a broker crash during the move can lose it),
// and drops the message when its dead-letter exchange (the app's exchange,
// for a queue this version created) is missing. So the app's own topology is
// declared again before every such reject; if that fails, the delivery goes
// back to the queue instead.
func (w *Worker) undecodable(ctx context.Context, span trace.Span, j job, ev event.Event, err error) {
	log := w.eventLog(span, ev)
	if !errors.Is(err, errOversized) {
		log.Warn("undecodable message; dead-lettering", "err", err)
		w.hop(ctx, j, ev, ReasonUndecodable, 0, err)
		return
	}
	log.Warn("body over the limit; rejecting it to the dead-letter queue", "err", err)
	if !j.s.alive() {
		return // the broker requeues it with the channel
	}
	if derr := w.topo.declareOwnOn(j.s.conn); derr != nil {
		w.settled(span, ev.Type, metrics.Requeue)
		log.Error("cannot declare the app's topology, which the rejected message is dead-lettered through; "+
			"leaving it to the broker", "exchange", w.topo.hops(), "err", derr)
		w.requeueLater(j)
		return
	}
	if nerr := j.s.acks.nack(j.d.DeliveryTag, false /* requeue */); nerr != nil {
		w.settled(span, ev.Type, metrics.Requeue)
		log.Warn("cannot reject; the broker redelivers it", "err", nerr)
		return
	}
	w.settled(span, ev.Type, metrics.DeadLetter)
	w.dead.Add(1)
}

// startSpan starts the consumer span of a delivery as a child of the trace
// context in its headers. With the default no-op tracer it only carries that
// context to the handler, so attributes are set only on a span that records.
func (w *Worker) startSpan(d *amqp091.Delivery, ev *event.Event) (context.Context, trace.Span) {
	ctx := tracing.Extract(w.hardStop(), d.Headers)
	ctx, span := w.tracer.Start(ctx, w.spanName, consumerSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.System, tracing.OpName.String("process"), tracing.OpType.String("process"),
			tracing.Destination.String(originalExchange(d)), tracing.RoutingKey.String(originalKey(d)),
			tracing.Consumer.String(w.cfg.App), tracing.MessageID.String(ev.ID),
			tracing.BodySize.Int(len(d.Body)), tracing.DeliveryTag.Int64(int64(d.DeliveryTag)),
			tracing.EventType.String(ev.Type), tracing.Attempt.Int(ev.Attempt))
	}
	return ctx, span
}

// eventLog is the logger for lines about one event; it names the trace when
// there is one, so logs and traces can be joined.
func (w *Worker) eventLog(span trace.Span, ev event.Event) *slog.Logger {
	log := w.log.With("event_id", ev.ID, "type", ev.Type, "attempt", ev.Attempt)
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String())
	}
	return log
}

// settled counts a delivery's outcome and notes it on its span.
func (w *Worker) settled(span trace.Span, typ, outcome string) {
	w.m.Settled(typ, outcome)
	if span.IsRecording() {
		span.SetAttributes(tracing.Outcome.String(outcome))
	}
}
