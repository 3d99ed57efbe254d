package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// published tells how a publish went: kept in the unrouted queue, and the
// time from its first send to the broker's answer.
type published struct {
	unrouted bool
	took     time.Duration
}

func (p *Publisher) publish(ctx context.Context, exchange, key string, msg amqp091.Publishing, keepUnrouted bool) (published, error) {
	if keepUnrouted && p.cfg.SendOnly {
		return published{}, errSendOnly
	}
	if err := p.begin(); err != nil {
		return published{}, err
	}
	defer p.life.Leave()
	if err := p.acquire(ctx); err != nil {
		return published{}, err
	}
	return p.publishHolding(ctx, exchange, key, msg, keepUnrouted)
}

// errSendOnly refuses Publish and PublishBatch on a SendOnly Publisher:
// its connection declares no unrouted queue to keep a copy in.
var errSendOnly = fmt.Errorf("%w: Publish on a SendOnly Publisher: use PublishMessage", ErrInvalidConfig)

// publishTo sends msg to a queue by name through exchange, an app's
// HopsExchange, whose binding keys are its queues' names. A return (no such
// binding) is ErrReturned. Used by the Worker for its hops.
func (p *Publisher) publishTo(ctx context.Context, exchange, queue string, msg amqp091.Publishing) error {
	_, err := p.publish(ctx, exchange, queue, msg, false)
	return err
}

// The hot paths below try the common case first with a one-case select
// (a plain channel operation) and fall back to the full select only when it
// would block: a select over several channels locks them all, which with
// many callers is a visible share of the Publisher's CPU.

func (p *Publisher) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a publish slot: %w", ctx.Err())
	case <-p.life.Halted():
		return p.closedErr()
	}
}

func (p *Publisher) release() { <-p.slots }

// publishHolding publishes with a window slot already taken; the slot is
// given back when the message's fate is known (or the attempt failed).
func (p *Publisher) publishHolding(ctx context.Context, exchange, key string, msg amqp091.Publishing, keepUnrouted bool) (published, error) {
	if err := checkHeaders(msg); err != nil {
		p.release()
		return published{}, err
	}
	began := time.Now()
	for first := true; ; first = false {
		if !first {
			if err := p.acquire(ctx); err != nil {
				return published{}, err
			}
		}
		s, err := p.session(ctx, exchange, key)
		if err != nil {
			p.release()
			return published{}, err
		}
		rec := &pending{exchange: exchange, key: key, msg: msg, keepUnrouted: keepUnrouted,
			done: make(chan error, 1), slots: p.slots}
		if err := s.publish(ctx, rec); err != nil {
			if errors.Is(err, errConnLost) {
				continue
			}
			return published{}, err
		}
		if done := ctx.Done(); done == nil {
			err = <-rec.done // a context that never ends
		} else {
			select {
			case err = <-rec.done:
			case <-done:
				return published{}, fmt.Errorf("message %s not confirmed: %w", msg.MessageId, ctx.Err())
			}
		}
		if errors.Is(err, errConnLost) {
			p.log.Debug("republishing after connection loss", "message_id", msg.MessageId)
			continue
		}
		// rec.unrouted was written before rec.done was sent.
		return published{unrouted: rec.unrouted, took: time.Since(began)}, err
	}
}

// checkHeaders refuses headers the broker would refuse. Sent anyway, headers
// over frame_max make the broker close the connection with FRAME_ERROR, and
// every republish would do it again.
func checkHeaders(msg amqp091.Publishing) error {
	if err := msg.Headers.Validate(); err != nil {
		return fmt.Errorf("invalid headers: %w", err)
	}
	if n := tableSize(msg.Headers); n > MaxHeaderBytes {
		return fmt.Errorf("%w: about %d bytes of headers, the limit is %d", ErrHeadersTooLarge, n, MaxHeaderBytes)
	}
	return nil
}

// session waits for a live session to publish to exchange with key on. While
// the broker refuses such publishes (see Publisher.refused) it returns that
// refusal at once: waiting for the next connection would only delay the
// same answer.
func (p *Publisher) session(ctx context.Context, exchange, key string) (*pubSession, error) {
	for {
		p.mu.Lock()
		s, ready, refused := p.sess, p.ready, p.refused
		p.mu.Unlock()
		if s != nil && !s.isDead() {
			return s, nil
		}
		if refused != nil && refused.covers(exchange, key) {
			return nil, refused.err
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("no broker connection: %w", ctx.Err())
		case <-p.life.Halted():
			return nil, p.closedErr()
		}
	}
}
