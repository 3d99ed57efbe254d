package amqp

import (
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// loop handles everything the broker sends about this session's publishes.
func (s *pubSession) loop(confirms <-chan amqp091.Confirmation, returns <-chan amqp091.Return,
	blocked <-chan amqp091.Blocking, closed, chClosed <-chan *amqp091.Error) {
	// Every notification channel is closed when the channel or connection
	// closes; a closed one must end the loop, not spin on zero values.
	drainReturns := func() {
		for {
			select {
			case r, ok := <-returns:
				if !ok {
					return
				}
				s.markReturned(r)
			default:
				return
			}
		}
	}
	confirm := func(c amqp091.Confirmation, ok bool) bool {
		if !ok {
			s.shutdown(closedWhy(closed, chClosed))
			return false
		}
		// The broker sends basic.return before the basic.ack of the same
		// message, and the client hands them over in that order; take
		// every return that is already here before resolving the ack.
		drainReturns()
		s.resolve(c)
		return true
	}
	for {
		// Confirms are most of what arrives: take those already waiting
		// with a plain receive, a bounded number at a time so that a steady
		// stream of them cannot keep the other notifications waiting.
	fast:
		for range 64 {
			select {
			case c, ok := <-confirms:
				if !confirm(c, ok) {
					return
				}
			default:
				break fast
			}
		}
		select {
		case r, ok := <-returns:
			if !ok {
				s.shutdown(errors.New("channel closed"))
				return
			}
			s.markReturned(r)
		case c, ok := <-confirms:
			if !confirm(c, ok) {
				return
			}
		case b, ok := <-blocked:
			if !ok {
				blocked = nil // the close notifications end the loop
				continue
			}
			s.setBlocked(b)
		case e := <-closed:
			s.shutdown(closeCause(e))
			return
		case e := <-chClosed:
			s.shutdown(closeCause(e))
			return
		}
	}
}

// closedWhy is the reason a closed notification channel was closed for: the
// broker's close error if it is already here.
func closedWhy(closed, chClosed <-chan *amqp091.Error) error {
	for _, c := range []<-chan *amqp091.Error{closed, chClosed} {
		select {
		case e, ok := <-c:
			if ok && e != nil {
				return e
			}
		default:
		}
	}
	return errors.New("channel closed")
}

func closeCause(e *amqp091.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

func (s *pubSession) setBlocked(b amqp091.Blocking) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	s.p.connm.Blocked(b.Active)
	if b.Active {
		s.p.log.Warn("broker is blocking publishers", "reason", b.Reason)
		select {
		case <-s.unblocked:
			s.unblocked = make(chan struct{})
		default:
		}
		return
	}
	s.p.log.Info("broker unblocked publishers")
	select {
	case <-s.unblocked:
	default:
		close(s.unblocked)
	}
}

// markReturned flags the oldest in-flight record that matches the return.
// Returns carry no sequence number, but they arrive in publish order, so the
// oldest unflagged record with the same id and key is the one.
func (s *pubSession) markReturned(r amqp091.Return) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	var best uint64
	for seq, rec := range s.pending {
		if rec.returned == nil && rec.msg.MessageId == r.MessageId && rec.key == r.RoutingKey &&
			rec.exchange == r.Exchange && (best == 0 || seq < best) {
			best = seq
		}
	}
	if best != 0 {
		s.pending[best].returned = &r
	}
}

func (s *pubSession) resolve(c amqp091.Confirmation) {
	s.pmu.Lock()
	rec, ok := s.pending[c.DeliveryTag]
	delete(s.pending, c.DeliveryTag)
	s.pmu.Unlock()
	if !ok {
		return
	}
	switch {
	case !c.Ack:
		rec.finish(ErrNacked)
	case rec.returned == nil:
		rec.finish(nil)
	case rec.keepUnrouted:
		// The broker dropped it (acked, but routed nowhere): keep a copy.
		go s.keepUnrouted(rec)
	default:
		rec.finish(fmt.Errorf("%w: %s to %q: %s", ErrReturned, rec.msg.MessageId, rec.key, rec.returned.ReplyText))
	}
}
