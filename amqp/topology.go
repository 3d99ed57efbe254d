package amqp

import (
	"fmt"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DefaultExchange is the domain exchange's name when none is configured.
const DefaultExchange = "domain_events"

// Queue types accepted for an app's queue.
const (
	QueueQuorum  = "quorum"
	QueueClassic = "classic"
)

// DefaultDeliveryLimit is the quorum x-delivery-limit of an app's queue.
const DefaultDeliveryLimit = 20

// ValidateBindingKey checks one EVENT_TYPES entry. In a topic binding "*" and
// "#" stand for whole dot-separated words only, so a key like "*Event" is legal
// AMQP but matches nothing at all for keys such as "CardAddedToLibraryEvent"
// (docs/design.md, "Broker facts"). Such keys are rejected with that reason.
func ValidateBindingKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty event type")
	}
	if len(k) > 255 {
		return fmt.Errorf("binding key %q is longer than 255 bytes", k)
	}
	for _, w := range strings.Split(k, ".") {
		if w == "*" || w == "#" || !strings.ContainsAny(w, "*#") {
			continue
		}
		return fmt.Errorf("binding key %q: %q mixes a wildcard with other characters in one word; "+
			"in a topic binding \"*\" and \"#\" match whole dot-separated words only, so it would match nothing "+
			"(\"*Event\" does not match \"CardAddedToLibraryEvent\"): list the event types, or leave EVENT_TYPES empty to receive all events", k, w)
	}
	return nil
}

// MatchBindingKey reports whether a topic exchange routes routingKey to a
// binding with bindingKey, as RabbitMQ does: both are split into words at
// every ".", "*" matches exactly one word and "#" zero or more, and any other
// word (an empty one too) only itself. The empty key has no words at all, so
// "#" matches it and "*" does not. It works in time proportional to the
// product of the word counts, never exponential however many "#" there are:
// routing keys may come from untrusted requests.
func MatchBindingKey(bindingKey, routingKey string) bool {
	b, r := topicWords(bindingKey), topicWords(routingKey)
	// m[j] is whether b[:i] matches r[:j], for the i of the current pass.
	m := make([]bool, len(r)+1)
	m[0] = true
	for _, w := range b {
		if w == "#" {
			// b[:i+1] matches r[:j] if b[:i] matches r[:k] for some k <= j.
			for j := 1; j <= len(r); j++ {
				m[j] = m[j] || m[j-1]
			}
			continue
		}
		for j := len(r); j >= 1; j-- {
			m[j] = m[j-1] && (w == "*" || w == r[j-1])
		}
		m[0] = false
	}
	return m[len(r)]
}

// topicWords splits a topic key into its words; "" has none, "." has two
// empty ones, as RabbitMQ 3.10.8 routes them (TestMatchBindingKey's cases).
func topicWords(k string) []string {
	if k == "" {
		return nil
	}
	return strings.Split(k, ".")
}

// declareDomain declares the domain exchange, its unrouted queue and the
// unrouted exchange in front of that queue, on ch (and the queue on a
// channel of its own from conn, which a 406 may close). The domain exchange
// gets no arguments at all: amqplib's assertExchange(name, 'topic',
// {durable: true}) fails with 406 on any argument it does not pass itself.
// The unrouted queue's bound comes from a policy (UnroutedPolicy); its only
// argument besides the type is the delivery limit that keeps `worker dlq`
// reads from dropping it on RabbitMQ 4.x (declarer.declareUnlimited), and
// the initial group size groupSize when not 0 (replication.go). kept lists
// the unrouted queue when it exists with another group size and keeps it.
func declareDomain(conn *amqp091.Connection, ch *amqp091.Channel, exchange string, groupSize int) (kept []string, err error) {
	if err := declareExchange(ch, exchange); err != nil {
		return nil, err
	}
	q := UnroutedQueue(exchange)
	d := declarer{conn: conn, groupSize: groupSize}
	err = d.declareUnlimited(q, serverVersion(conn))
	d.close()
	if err != nil {
		return nil, err
	}
	// The copies go through an exchange of their own, not the default
	// exchange: write on amq.default would let a publisher's user put
	// messages into every queue of the vhost (docs/least-privilege.md). It
	// is auto-delete: it exists for its one binding, so deleting the
	// unrouted queue removes it too, and the next declare makes both again.
	if err := ch.ExchangeDeclare(q, amqp091.ExchangeDirect,
		true,  // durable
		true,  // autoDelete: when the unrouted queue is deleted
		false, // internal: publishers send to it
		false, // noWait
		nil); err != nil {
		return nil, declareError("exchange", q, err)
	}
	if err := ch.QueueBind(q, q, q, false /* noWait */, nil); err != nil {
		return nil, fmt.Errorf("bind queue %q to exchange %q: %w", q, q, err)
	}
	return d.keptSize, nil
}

// declareExchange declares the domain exchange alone (none when empty).
func declareExchange(ch *amqp091.Channel, exchange string) error {
	if exchange == "" {
		return nil
	}
	err := ch.ExchangeDeclare(exchange, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil)
	if err != nil {
		return declareError("exchange", exchange, err)
	}
	return nil
}

// appTopology is everything a worker of one app declares.
type appTopology struct {
	exchange      string
	passive       bool // TopologyPassive: the domain exchange is only checked
	queue         string
	queueType     string
	deliveryLimit int
	groupSize     int // x-quorum-initial-group-size of new quorum queues; 0: the broker's
	bindings      []string
	delays        []time.Duration
}

// declared is what declaring an app's topology found: queues created by
// earlier versions, kept with their arguments.
type declared struct {
	legacy   []string // dead-lettering through the default exchange (declarer)
	keptSize []string // with another initial group size than configured (replication.go)
}

// hops is the app's own exchange (HopsExchange).
func (t appTopology) hops() string { return HopsExchange(t.queue) }

// mainArgs are the app queue's arguments, dead-lettering through dlx. A
// quorum queue dead-letters messages past the delivery limit to the
// dead-letter queue, at least once (which needs reject-publish overflow). A
// classic queue has no delivery limit.
func (t appTopology) mainArgs(dlx string) amqp091.Table {
	args := amqp091.Table{
		amqp091.QueueTypeArg:        t.queueType,
		"x-dead-letter-exchange":    dlx,
		"x-dead-letter-routing-key": DeadQueue(t.queue),
	}
	if t.queueType == QueueQuorum {
		args["x-delivery-limit"] = int64(t.deliveryLimit)
		args["x-dead-letter-strategy"] = "at-least-once"
		args[amqp091.QueueOverflowArg] = amqp091.QueueOverflowRejectPublish
	}
	return args
}

// retryArgs are a delay queue's arguments: hold each message for d, then
// dead-letter it, at least once, through dlx straight to the app's queue by
// name, so no other app sees it again.
func (t appTopology) retryArgs(d time.Duration, dlx string) amqp091.Table {
	return amqp091.Table{
		amqp091.QueueTypeArg:        amqp091.QueueTypeQuorum,
		amqp091.QueueMessageTTLArg:  d.Milliseconds(),
		"x-dead-letter-exchange":    dlx,
		"x-dead-letter-routing-key": t.queue,
		"x-dead-letter-strategy":    "at-least-once",
		amqp091.QueueOverflowArg:    amqp091.QueueOverflowRejectPublish,
	}
}

// declare declares the app's topology on channels of its own, and returns
// the queues kept with the arguments they were created with (declared):
// the shared part (or, passive, a check of it), the app's own part
// (declareOwn) and the bindings to the domain exchange.
func (t appTopology) declare(conn *amqp091.Connection) (found declared, err error) {
	d := declarer{conn: conn, groupSize: t.groupSize}
	defer d.close()
	if d.ch, err = conn.Channel(); err != nil {
		return found, err
	}
	var kept []string
	if t.passive {
		err = checkDomain(d.ch, t.exchange, false /* unrouted: publishers keep it, not workers */)
	} else {
		kept, err = declareDomain(d.conn, d.ch, t.exchange, t.groupSize)
	}
	if err != nil {
		return found, err
	}
	if err := t.declareOwn(&d); err != nil {
		return found, err
	}
	for _, key := range t.bindings {
		if err := d.ch.QueueBind(t.queue, key, t.exchange, false /* noWait */, nil); err != nil {
			return found, fmt.Errorf("bind queue %q to %q with key %q: %w", t.queue, t.exchange, key, err)
		}
	}
	return declared{legacy: d.legacy, keptSize: append(kept, d.keptSize...)}, nil
}

// declareOwnOn declares the app's own part of the topology on conn: what
// the hops connection needs before it publishes, and what a worker
// declares again when a hop or a rejected delivery finds it missing (an
// operator deleted the exchange or a queue). Idempotent, and needs only
// the app user's permissions on its own names.
func (t appTopology) declareOwnOn(conn *amqp091.Connection) error {
	d := declarer{conn: conn, groupSize: t.groupSize}
	defer d.close()
	return t.declareOwn(&d)
}

// declareOwn declares the app's exchange, its queues and their bindings to
// the exchange, on d's channels. The exchange comes before the queues that
// dead-letter through it; until a queue is bound to it, an at-least-once
// dead letter for that queue waits in its source queue, it is not dropped.
func (t appTopology) declareOwn(d *declarer) (err error) {
	if d.ch == nil {
		if d.ch, err = d.conn.Channel(); err != nil {
			return err
		}
	}
	hops := t.hops()
	if err := d.ch.ExchangeDeclare(hops, amqp091.ExchangeDirect,
		true,  // durable
		false, // autoDelete
		false, // internal: the Worker publishes to it
		false, // noWait
		nil); err != nil {
		return declareError("exchange", hops, err)
	}
	dead := DeadQueue(t.queue)
	if err := d.declareUnlimited(dead, serverVersion(d.conn)); err != nil {
		return err
	}
	queues := []string{dead}
	for _, delay := range t.delays {
		q := RetryQueue(t.queue, delay)
		if err := d.declareKeeping(q, t.retryArgs(delay, hops), t.retryArgs(delay, "")); err != nil {
			return err
		}
		queues = append(queues, q)
	}
	if err := d.declareKeeping(t.queue, t.mainArgs(hops), t.mainArgs("")); err != nil {
		return err
	}
	queues = append(queues, t.queue)
	for _, q := range queues {
		if err := d.ch.QueueBind(q, q, hops, false /* noWait */, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q with key %q: %w", q, hops, q, err)
		}
	}
	return nil
}
