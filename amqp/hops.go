package amqp

import (
	"context"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/tracing"
)

// hop moves a delivery to a delay queue (reason "") or the dead-letter queue,
// publishing with a confirm before acking. A hop that cannot be confirmed
// leaves the delivery to the broker: it is requeued after a pause, and the
// quorum delivery limit bounds how often. A hop the broker refuses (403, 404)
// is held instead, unacked, and tried again (holdRefused).
func (w *Worker) hop(ctx context.Context, j job, ev event.Event, reason Reason, delay time.Duration, cause error) {
	d := &j.d
	if !j.s.alive() {
		// The channel is gone, so the broker requeues this delivery anyway;
		// a hop now would only make a duplicate.
		return
	}
	now := time.Now()
	target := DeadQueue(w.topo.queue)
	msg := republishing(d, ev.ID, func(h amqp091.Table) {
		if reason == "" {
			MarkFailed(h, cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt + 1)
		} else {
			MarkDead(h, reason, w.cfg.App, cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt)
		}
	})
	outcome := metrics.DeadLetter
	if reason == "" {
		target = RetryQueue(w.topo.queue, delay)
		outcome = metrics.Retry
	}
	process := trace.SpanFromContext(ctx)
	ctx, span := w.tracer.Start(ctx, "settle "+target, producerSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.System, tracing.OpName.String("settle"), tracing.OpType.String("settle"),
			tracing.Destination.String(target), tracing.MessageID.String(ev.ID), tracing.Outcome.String(outcome))
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := w.publishHop(hctx, target, msg)
	cancel()
	if IsPublishRefusal(err) {
		err = w.holdRefused(ctx, j, target, msg, err)
	}
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if IsPublishRefusal(err) {
		// Held until the session died or the Worker stopped (holdRefused,
		// which logged why): unacked, it goes back to the queue.
		w.settled(process, ev.Type, metrics.Requeue)
		return
	}
	if err != nil {
		w.settled(process, ev.Type, metrics.Requeue)
		w.eventLog(process, ev).Error("cannot move event; leaving it to the broker", "target", target, "err", err)
		w.requeueLater(j)
		return
	}
	j.s.acks.ack(d.DeliveryTag)
	w.settled(process, ev.Type, outcome)
	if reason == "" {
		w.retried.Add(1)
	} else {
		w.dead.Add(1)
	}
}

// requeueLater gives a delivery that could not be moved back to the broker
// after a short pause, so that a broker-side problem does not become a hot
// loop of redeliveries. On a hard stop it is left unacked (the broker
// requeues it with the channel).
func (w *Worker) requeueLater(j job) {
	if w.hardStop().Err() != nil {
		return
	}
	t := time.NewTimer(time.Second)
	select {
	case <-t.C:
	case <-w.hardStop().Done():
	}
	t.Stop()
	_ = j.s.acks.nack(j.d.DeliveryTag, true /* requeue */)
}
