package amqp

import (
	"errors"
	"fmt"
	"regexp"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// refusal is the broker's answer to a publish it will not take: it closes the
// channel with 403 ACCESS_REFUSED (the user may not write to the exchange, or
// to the routing key under topic permissions) or 404 NOT_FOUND (no such
// exchange). The close names neither the message nor its sequence number, so
// the refusal applies to every unconfirmed message of the session that went
// where the broker's reason names (all of them when it names nothing).
type refusal struct {
	// exchange as a Publisher names it ("" for the default exchange, which
	// the broker calls amq.default), and the routing key when topic
	// permissions refused one. known is false when the reason named none.
	exchange, key string
	known, topic  bool
	// main: the exchange is the one a Publisher's own publishes go to
	// (Publisher.mainExchange), so the refusal stops all of them: each
	// reconnect probes it before it counts as connected. Another one (the
	// unrouted copies' path) fails only what goes there, and the Publisher
	// reconnects for the rest.
	main bool
	err  error // ErrAccessRefused or ErrTopologyMissing, naming them
}

// Reasons of RabbitMQ 3.10.8 (measured, TestPublisher_RefusedWrite and the
// other tests of publish_refusal_test.go):
//
//	ACCESS_REFUSED - access to exchange 'x' in vhost '/' refused for user 'u'
//	ACCESS_REFUSED - access to topic 'Key' in exchange 'x' in vhost '/' refused for user 'u'
//	NOT_FOUND - no exchange 'x' in vhost '/'
var (
	refusedTopic    = regexp.MustCompile(`access to topic '([^']*)' in exchange '([^']*)'`)
	refusedExchange = regexp.MustCompile(`access to exchange '([^']*)'`)
	missingExchange = regexp.MustCompile(`no exchange '([^']*)'`)
)

// publishRefusal classifies why the broker closed a publishing channel or
// connection; nil when it is no refusal (a lost connection, which a
// reconnect fixes).
func publishRefusal(cause error) *refusal {
	var aerr *amqp091.Error
	if !errors.As(cause, &aerr) || !aerr.Server {
		return nil
	}
	switch aerr.Code {
	case amqp091.AccessRefused:
		r := &refusal{}
		need := "write permission on exchange"
		if m := refusedTopic.FindStringSubmatch(aerr.Reason); m != nil {
			r.exchange, r.key, r.known, r.topic = exchangeName(m[2]), m[1], true, true
			need = fmt.Sprintf("a topic permission (write) for routing key %q on exchange", r.key)
		} else if m := refusedExchange.FindStringSubmatch(aerr.Reason); m != nil {
			r.exchange, r.known = exchangeName(m[1]), true
		}
		r.err = named(ErrAccessRefused, cause, "%v: publish to %s: %d %s (the user needs %s %q)",
			ErrAccessRefused, r.where(), aerr.Code, aerr.Reason, need, brokerExchange(r.exchange))
		return r
	case amqp091.NotFound:
		r := &refusal{}
		if m := missingExchange.FindStringSubmatch(aerr.Reason); m != nil {
			r.exchange, r.known = exchangeName(m[1]), true
		}
		r.err = named(ErrTopologyMissing, cause, "%v: publish to %s: %d %s (declare the exchange, or check EXCHANGE)",
			ErrTopologyMissing, r.where(), aerr.Code, aerr.Reason)
		return r
	}
	return nil
}

// where names what was refused, for the error's text.
func (r *refusal) where() string {
	switch {
	case !r.known:
		return "an exchange"
	case r.topic:
		return fmt.Sprintf("exchange %q with routing key %q", brokerExchange(r.exchange), r.key)
	}
	return fmt.Sprintf("exchange %q", brokerExchange(r.exchange))
}

// covers reports whether a message to exchange with routing key key is one
// the refusal is about.
func (r *refusal) covers(exchange, key string) bool {
	return !r.known || (r.exchange == exchange && (!r.topic || r.key == key))
}

// exchangeName is the broker's name of an exchange as a Publisher names it.
func exchangeName(broker string) string {
	if broker == "amq.default" {
		return ""
	}
	return broker
}

// brokerExchange is the name the broker's permissions use for exchange.
func brokerExchange(exchange string) string {
	if exchange == "" {
		return "amq.default"
	}
	return exchange
}

// consumeError names a refused basic.consume: 403 means the user lacks read
// permission on the queue.
func consumeError(queue string, err error) error {
	var aerr *amqp091.Error
	if errors.As(err, &aerr) && aerr.Code == amqp091.AccessRefused {
		return named(ErrAccessRefused, err, "%v: consume queue %q: %d %s (the user needs read permission on queue %q)",
			ErrAccessRefused, queue, aerr.Code, aerr.Reason, queue)
	}
	if errors.As(err, &aerr) && aerr.Code == amqp091.NotFound {
		return named(ErrTopologyMissing, err, "%v: consume queue %q: %d %s", ErrTopologyMissing, queue, aerr.Code, aerr.Reason)
	}
	return fmt.Errorf("consume %q: %w", queue, err)
}

// IsPublishRefusal reports a publish the broker refused (ErrAccessRefused,
// ErrTopologyMissing): publishing again fails the same way until an operator
// grants the permission or declares the exchange.
func IsPublishRefusal(err error) bool {
	return errors.Is(err, ErrAccessRefused) || errors.Is(err, ErrTopologyMissing)
}
