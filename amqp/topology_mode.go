package amqp

import (
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// What a Publisher or Worker does with the shared topology — the domain
// exchange and its unrouted queue — when it connects (docs/least-privilege.md).
const (
	// TopologyDeclare declares it (idempotent). It needs configure
	// permission on those names, which also allows deleting them.
	TopologyDeclare = "declare"
	// TopologyPassive only checks that it exists, with passive declares,
	// which need no permission at all (measured on RabbitMQ 3.10.8): for
	// users without configure permission on the shared names. A Worker
	// still declares its app's own exchange and queues.
	TopologyPassive = "passive"
)

// validateTopology checks a Topology field.
func validateTopology(field, mode string) error {
	if mode != TopologyDeclare && mode != TopologyPassive {
		return configError(field, mode, fmt.Sprintf("use %s (the default) or %s", TopologyDeclare, TopologyPassive))
	}
	return nil
}

// checkDomain is declareDomain for TopologyPassive: it only checks that the
// exchange and, when unrouted is set, its unrouted queue exist. A missing one
// is ErrTopologyMissing, naming it and the fix; the broker closes the channel
// on it, so the caller's connection attempt ends there.
func checkDomain(ch *amqp091.Channel, exchange string, unrouted bool) error {
	err := ch.ExchangeDeclarePassive(exchange, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil)
	if err != nil {
		return missingError("exchange", exchange, err)
	}
	if !unrouted {
		return nil
	}
	q := UnroutedQueue(exchange)
	// The unrouted exchange, and the queue behind it. Their binding cannot
	// be checked over AMQP 0-9-1: without it an unroutable event's copy is
	// returned, and its publish fails (ErrReturned), loudly.
	if err := ch.ExchangeDeclarePassive(q, amqp091.ExchangeDirect, true, true, false, false, nil); err != nil {
		return missingError("exchange", q, err)
	}
	if _, err := ch.QueueDeclarePassive(q,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil); err != nil {
		return missingError("queue", q, err)
	}
	return nil
}

// missingError is checkDomain's error for kind name.
func missingError(kind, name string, err error) error {
	var aerr *amqp091.Error
	if errors.As(err, &aerr) && aerr.Code == amqp091.NotFound {
		return fmt.Errorf("%w: %s %q does not exist (broker: %s); TOPOLOGY=%s only checks the shared topology: "+
			"declare it once as a user with configure permission on it (TOPOLOGY=%s), see docs/least-privilege.md",
			ErrTopologyMissing, kind, name, aerr.Reason, TopologyPassive, TopologyDeclare)
	}
	return fmt.Errorf("check %s %q: %w", kind, name, err)
}
