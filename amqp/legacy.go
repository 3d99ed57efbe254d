package amqp

import (
	"errors"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// declarer declares queues that may predate the app's own exchange. Queues
// created before it dead-letter through the default exchange
// (x-dead-letter-exchange ""), and a queue's arguments never change (406).
// Re-declaring such a queue with its old arguments needs configure
// permission only: the broker checks write on the dead-letter exchange when
// it creates a queue, not when it is declared again, and never when it
// dead-letters (TestBroker_WhatPermissionsAreChecked). Those queues keep
// their arguments, names and messages; their dead letters reach only the
// app's own queues, by the names fixed when they were created.
type declarer struct {
	conn   *amqp091.Connection
	ch     *amqp091.Channel
	legacy []string // queues declared with their old arguments
	// groupSize is the initial group size of the quorum queues it creates
	// (QuorumInitialGroupSize; 0: the broker's default), keptSize the
	// queues that exist with another one and keep it (replication.go).
	groupSize int
	keptSize  []string
}

// declareKeeping declares queue q with args, or, when q exists from before
// the app's exchange, with old (which differ in x-dead-letter-exchange only).
func (d *declarer) declareKeeping(q string, args, old amqp091.Table) error {
	fellBack, err := d.declareOr(q, args, old, deadLettersThroughDefault)
	if fellBack {
		d.legacy = append(d.legacy, q)
	}
	return err
}

// declareUnlimited declares a quorum queue that nothing is ever
// dead-lettered out of (a dead-letter or unrouted queue) so that no number
// of reads drops a message: with x-delivery-limit -1 where the broker takes
// it as no limit (BrokerVersion.UnlimitedDeliveryLimit), without it
// elsewhere, as always. A queue that exists already keeps the arguments it
// was created with, with or without the limit (either way round the broker
// refuses a re-declare with 406): existing deployments on RabbitMQ 4.x need
// a policy (docs/design.md, "Broker versions").
func (d *declarer) declareUnlimited(q string, v BrokerVersion) error {
	plain := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	unlimited := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum, "x-delivery-limit": int64(-1)}
	first, other := plain, unlimited
	if v.UnlimitedDeliveryLimit() {
		first, other = unlimited, plain
	}
	_, err := d.declareOr(q, first, other, func(err error) bool { return inequivalent(err, "x-delivery-limit") })
	return err
}

// declareOr declares queue q with args or, when the broker refuses that
// with an error for which exists is true (q exists with other arguments),
// with alt on a new channel; fellBack says so.
func (d *declarer) declareOr(q string, args, alt amqp091.Table, exists func(error) bool) (fellBack bool, err error) {
	if d.ch == nil {
		if d.ch, err = d.conn.Channel(); err != nil {
			return false, err
		}
	}
	err = d.declareGroupSized(q, args)
	if !exists(err) {
		if err != nil {
			return false, declareError("queue", q, err)
		}
		return false, nil
	}
	// The refusal closed the channel.
	if d.ch, err = d.conn.Channel(); err != nil {
		return false, err
	}
	if err := d.declareGroupSized(q, alt); err != nil {
		return false, declareError("queue", q, err)
	}
	return true, nil
}

func (d *declarer) close() {
	if d.ch != nil {
		_ = d.ch.Close()
	}
}

func declareRaw(ch *amqp091.Channel, name string, args amqp091.Table) error {
	_, err := ch.QueueDeclare(name,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		args)
	return err
}

// deadLettersThroughDefault reports whether err is the broker's refusal to
// re-declare a queue whose x-dead-letter-exchange is "" with another one:
// "inequivalent arg 'x-dead-letter-exchange' for queue … but current is ”".
func deadLettersThroughDefault(err error) bool {
	var aerr *amqp091.Error
	return inequivalent(err, "x-dead-letter-exchange") &&
		errors.As(err, &aerr) && strings.HasSuffix(aerr.Reason, "current is ''")
}

// inequivalent reports whether err is the broker's 406 refusal to declare
// an existing queue with another value (or presence) of argument arg.
func inequivalent(err error, arg string) bool {
	var aerr *amqp091.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp091.PreconditionFailed {
		return false
	}
	m := inequivalentArg.FindStringSubmatch(aerr.Reason)
	return m != nil && m[1] == arg
}
