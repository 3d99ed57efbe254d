package redisbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/event"
)

// publish publishes ev until the broker confirms it, backing off between
// attempts: a broker that is down or refusing slows the source (the slot
// stays taken) rather than losing the message. It gives up when the Bridge
// halts, when the Publisher stopped, and at once for a message the broker
// can never take (bridge.ErrRejected).
func (b *Bridge) publish(ev event.Event) error {
	ctx := b.life.HaltContext()
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
		err := b.pub.Publish(pctx, ev)
		cancel()
		switch {
		case err == nil:
			if b.failing.CompareAndSwap(true, false) {
				b.lastErr.Store(nil)
				b.log.Info("publishing again")
			}
			return nil
		case invalid(err):
			return fmt.Errorf("%w: %w", bridge.ErrRejected, err)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, amqp.ErrClosed):
			return err
		}
		b.noteErr(err)
		if b.failing.CompareAndSwap(false, true) {
			b.log.Warn("publish failed; retrying with backoff, reading slows down", "err", err, "event_id", ev.ID)
		}
		if !b.pause(b.cfg.Backoff.Delay(attempt)) {
			return ctx.Err()
		}
	}
}

// invalid reports an error that says the event itself can never be
// published: retrying cannot help.
func invalid(err error) bool {
	for _, target := range []error{event.ErrMissingType, event.ErrInvalidType, event.ErrInvalidData, event.ErrInvalidID,
		event.ErrInvalidAggregateID, event.ErrInvalidSource, amqp.ErrHeadersTooLarge, bridge.ErrRejected} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
