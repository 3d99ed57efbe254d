package amqp

import (
	"context"
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// keepUnrouted stores an unroutable event in the unrouted queue on the same
// session, then resolves the original with that outcome. The copy records
// where the event was headed so it can be replayed to the exchange later.
func (s *pubSession) keepUnrouted(rec *pending) {
	msg := rec.msg
	h := make(amqp091.Table, len(msg.Headers)+2)
	for k, v := range msg.Headers {
		h[k] = v
	}
	h[HeaderRoutingKey] = rec.key
	h[HeaderExchange] = rec.exchange
	msg.Headers = h
	// Through the unrouted exchange (declareDomain), by the queue's name.
	q := UnroutedQueue(s.p.cfg.Exchange)
	cp := &pending{exchange: q, key: q, msg: msg, done: make(chan error, 1)}
	err := s.publish(context.Background(), cp)
	if err == nil {
		err = <-cp.done
	}
	if err == nil {
		rec.unrouted = true
		s.p.unrouted.Add(1)
		s.p.log.Debug("event kept in unrouted queue", "event_id", msg.MessageId, "type", rec.key)
	} else if errors.Is(err, ErrNacked) {
		err = fmt.Errorf("%w (%w): unrouted queue %q refused the copy of event %q (type %q, which no queue is bound for): "+
			"it is most likely full (its policy's max-length or max-length-bytes, overflow reject-publish); "+
			"bind an app to the type, or empty the queue with `worker dlq --unrouted replay` or `purge`",
			ErrUnroutedRefused, err, cp.key, msg.MessageId, rec.key)
	} else if !errors.Is(err, errConnLost) {
		err = fmt.Errorf("keeping unroutable event in %q: %w", cp.key, err)
	}
	rec.finish(err)
}
