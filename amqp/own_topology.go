package amqp

import (
	"context"
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// A Worker's hops connection owns the app's own topology (the exchange
// events_<app>.hops, the app's queues, their bindings to it): it declares
// it when it connects, and again when a hop finds it missing, instead of
// waiting for the consuming connection to reconnect. Deleted under a running
// worker, the exchange is back after one reconnect (a publish to a missing
// exchange closes the channel with 404), and a deleted queue or binding
// after one return.

// declareOwn declares the app's own topology on conn; a Publisher without
// any (not a Worker's hops) declares nothing.
func (p *Publisher) declareOwn(conn *amqp091.Connection) error {
	if p.cfg.ownTopology == nil {
		return nil
	}
	return p.cfg.ownTopology(conn)
}

// redeclareOwn declares the app's own topology again on the live
// connection. When there is none — the hop's 404 (no such exchange) closed
// it — the reconnect declares it (connect, declareOwn) before it probes that
// 404: redeclareOwn waits for that connect attempt instead of failing at once
// with the recorded refusal, which would take a repair for a refusal only an
// operator can lift (holdRefused). It returns cause when the attempt failed
// or ctx ended first.
func (p *Publisher) redeclareOwn(ctx context.Context, cause error) error {
	p.mu.Lock()
	s, attempted := p.sess, p.attempted
	p.mu.Unlock()
	if s != nil && !s.isDead() {
		return p.declareOwn(s.conn)
	}
	select {
	case <-attempted:
	case <-ctx.Done():
		return cause
	case <-p.life.Done():
		return p.closedErr()
	}
	p.mu.Lock()
	s = p.sess
	p.mu.Unlock()
	if s == nil || s.isDead() {
		if last := p.last.get(); last != nil {
			return last
		}
		return cause
	}
	return nil // its connect declared it
}

// ownTopologyGone reports whether a hop's error says that what it was
// published to is missing: returned (no binding for the queue's name, the
// queue deleted) or the exchange itself (404).
func ownTopologyGone(err error) bool {
	var aerr *amqp091.Error
	return errors.Is(err, ErrReturned) || errors.Is(err, ErrTopologyMissing) ||
		(errors.As(err, &aerr) && aerr.Code == amqp091.NotFound)
}

// publishHop publishes a hop to queue through the app's exchange; if the
// app's topology turns out to be missing, it declares it again and
// publishes once more. The caller acks the delivery only on nil.
func (w *Worker) publishHop(ctx context.Context, queue string, msg amqp091.Publishing) error {
	err := w.hops.publishTo(ctx, w.topo.hops(), queue, msg)
	if !ownTopologyGone(err) {
		return err
	}
	w.log.Warn("the app's topology is missing; declaring it again", "exchange", w.topo.hops(), "queue", queue, "err", err)
	if derr := w.hops.redeclareOwn(ctx, err); derr == err {
		return err
	} else if derr != nil {
		return fmt.Errorf("%w (declaring the app's topology again: %v)", err, derr)
	}
	return w.hops.publishTo(ctx, w.topo.hops(), queue, msg)
}
