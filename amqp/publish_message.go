package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// PublishMessage publishes msg, a message the caller prepared (such as a
// replayed dead letter built with Republish), to exchange with routing key
// key, mandatory, and returns once the broker confirmed it. Unlike Publish,
// it sends msg as given (no id, trace context or app id is added) and keeps
// nothing in the unrouted queue: a message the broker returns as unroutable
// is ErrReturned. Other errors: ErrNacked, ErrHeadersTooLarge, ErrClosed, or
// ctx's (wrapped). If the connection dies before the confirm, msg is
// published again on the next one, for as long as ctx allows: a duplicate is
// possible, a loss is not.
func (p *Publisher) PublishMessage(ctx context.Context, exchange, key string, msg amqp091.Publishing) error {
	f, err := p.SendMessage(ctx, exchange, key, msg)
	if err != nil {
		return err
	}
	return f.Wait(ctx)
}

// SendMessage is PublishMessage without the wait for the confirm, so that a
// caller can keep many messages in flight (within the Publisher's Window): it
// returns once msg is on its way, and the InFlight's Wait tells its fate.
// Messages sent from one goroutine leave in the order sent, on one
// connection: one whose connection died goes again when its Wait runs, so it
// may arrive after newer ones. Call Wait for
// every InFlight: Stop waits for them.
func (p *Publisher) SendMessage(ctx context.Context, exchange, key string, msg amqp091.Publishing) (*InFlight, error) {
	if err := checkHeaders(msg); err != nil {
		return nil, err
	}
	if err := p.begin(); err != nil {
		return nil, err
	}
	f := &InFlight{p: p, exchange: exchange, key: key, msg: msg}
	if err := f.send(ctx); err != nil {
		p.life.Leave()
		return nil, err
	}
	return f, nil
}

// InFlight is a message SendMessage sent that awaits the broker's confirm.
// It is used by the goroutine that sent it.
type InFlight struct {
	p             *Publisher
	exchange, key string
	msg           amqp091.Publishing
	rec           *pending // this attempt's record; a new one per connection
	// answer is rec's outcome once Ready took it from rec.done.
	answer   error
	answered bool
	once     sync.Once
	err      error
}

// Ready reports, without waiting, whether the broker has answered for the
// message, so that Wait returns at once (unless the answer was a lost
// connection: Wait then sends the message again and waits for that).
func (f *InFlight) Ready() bool {
	if f.answered {
		return true
	}
	select {
	case f.answer = <-f.rec.done:
		f.answered = true
	default:
	}
	return f.answered
}

// send publishes the message on the current session, taking a window slot
// that its record gives back once its fate is known.
func (f *InFlight) send(ctx context.Context) error {
	p := f.p
	for {
		if err := p.acquire(ctx); err != nil {
			return err
		}
		s, err := p.session(ctx, f.exchange, f.key)
		if err != nil {
			p.release()
			return err
		}
		f.rec = &pending{exchange: f.exchange, key: f.key, msg: f.msg, done: make(chan error, 1), slots: p.slots}
		if err := s.publish(ctx, f.rec); err != nil {
			if errors.Is(err, errConnLost) {
				continue
			}
			return err
		}
		return nil
	}
}

// Wait returns nil once the broker confirmed the message; ErrReturned
// (wrapped) when it could not route it, ErrNacked when it refused it, or
// ctx's error (wrapped) when ctx ends first. A message whose connection died
// before its confirm is published again and waited for. A fate already known
// is returned even when ctx has ended. Later calls return the first answer.
func (f *InFlight) Wait(ctx context.Context) error {
	f.once.Do(func() {
		defer f.p.life.Leave()
		f.err = f.wait(ctx)
	})
	return f.err
}

func (f *InFlight) wait(ctx context.Context) error {
	for {
		if !f.answered {
			select {
			case f.answer = <-f.rec.done:
			case <-ctx.Done():
				// The answer may have come at the same time: prefer it.
				if !f.Ready() {
					return fmt.Errorf("message %s not confirmed: %w", f.msg.MessageId, ctx.Err())
				}
			}
			f.answered = true
		}
		if !errors.Is(f.answer, errConnLost) {
			return f.answer
		}
		if ctx.Err() != nil {
			// Not sent again: an ended ctx must not cost a copy.
			return fmt.Errorf("message %s not confirmed: %w", f.msg.MessageId, ctx.Err())
		}
		f.p.log.Debug("republishing after connection loss", "message_id", f.msg.MessageId)
		f.answered = false
		if err := f.send(ctx); err != nil {
			return err
		}
	}
}
