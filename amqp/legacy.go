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
}

// declareKeeping declares queue q with args, or, when q exists from before
// the app's exchange, with old (which differ in x-dead-letter-exchange only).
func (d *declarer) declareKeeping(q string, args, old amqp091.Table) error {
	err := declareRaw(d.ch, q, args)
	if !deadLettersThroughDefault(err) {
		if err != nil {
			return declareError("queue", q, err)
		}
		return nil
	}
	// The refusal closed the channel.
	if d.ch, err = d.conn.Channel(); err != nil {
		return err
	}
	if err := declareRaw(d.ch, q, old); err != nil {
		return declareError("queue", q, err)
	}
	d.legacy = append(d.legacy, q)
	return nil
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
	if !errors.As(err, &aerr) || aerr.Code != amqp091.PreconditionFailed {
		return false
	}
	m := inequivalentArg.FindStringSubmatch(aerr.Reason)
	return m != nil && m[1] == "x-dead-letter-exchange" && strings.HasSuffix(aerr.Reason, "current is ''")
}
