package amqp

import (
	"context"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// holdRefused handles a hop the broker refused (IsPublishRefusal: the
// worker's user may not write where the hop goes, or it does not exist). The
// delivery stays unacked and the handler loop keeps it, trying the hop again
// with the Worker's Backoff: acking it would lose the event, and a nack with
// requeue would bring it straight back (a loop of redeliveries that counts
// against the quorum delivery limit). While every loop holds one, no more
// deliveries are taken; the broker keeps the rest. It gives up, leaving the
// delivery unacked for the broker to requeue, when the session dies or the
// Worker stops. It returns the hop's last error (nil: moved at last).
//
// The refusal is logged once while any delivery is held, not per delivery.
func (w *Worker) holdRefused(ctx context.Context, j job, target string, msg amqp091.Publishing, err error) error {
	j.s.noteHeld()
	if w.holding.Add(1) == 1 {
		w.log.Error("the broker refuses the worker's retries and dead letters; holding those deliveries unacked "+
			"(the handler loops wait) and trying again with backoff until it takes them", "target", target, "err", err)
	}
	defer func() {
		if w.holding.Add(-1) == 0 && err == nil {
			w.log.Info("the broker takes the worker's retries and dead letters again", "target", target)
		}
	}()
	for attempt := 0; IsPublishRefusal(err); attempt++ {
		t := time.NewTimer(w.cfg.Backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-j.s.dead:
		case <-w.life.Stopping():
		case <-w.hardStop().Done():
		}
		t.Stop()
		if !j.s.alive() || w.life.IsStopping() {
			return err // the channel's close requeues it
		}
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = w.publishHop(hctx, target, msg)
		cancel()
	}
	return err
}

// noteHeld tells serve that a delivery of s is held (see
// workerSession.held); it never waits.
func (s *workerSession) noteHeld() {
	select {
	case s.held <- struct{}{}:
	default: // already signalled
	}
}

// HopsRefused is the broker's refusal of the Worker's retries and dead
// letters (ErrAccessRefused, ErrTopologyMissing) while it lasts, else nil:
// deliveries whose hop it refused are held unacked meanwhile.
func (w *Worker) HopsRefused() error {
	if err := w.hops.LastError(); IsPublishRefusal(err) {
		return err
	}
	return nil
}
