package amqp

import amqp091 "github.com/rabbitmq/amqp091-go"

// DeliveryHeaders are headers RabbitMQ adds to a message when it delivers or
// dead-letters it (x-death aside). A message published again — a worker's
// retry or dead-letter hop, a replay — must not carry them.
var DeliveryHeaders = []string{"x-delivery-count", "x-first-death-exchange", "x-first-death-queue",
	"x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"}

// Republish is the message a delivery becomes when it is published again:
// its properties and body, headers h (the caller's edited copy) less
// HeaderWithheldBody, and message id id, persistent. user_id is dropped (the
// broker checks it against the publishing connection's user) and so is
// expiration (it would race a delay queue's TTL, or expire a replayed event).
func Republish(d *amqp091.Delivery, id string, h amqp091.Table) amqp091.Publishing {
	// Said by the receiving connection, of that delivery only.
	delete(h, HeaderWithheldBody)
	return amqp091.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp091.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       id,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// republishing copies a delivery into a message for a hop (delay queue or
// dead-letter queue): same properties and id, our headers updated by edit.
// user_id is dropped (the broker checks it against our connection's user) and
// so is expiration (it would race the delay queue's TTL).
func republishing(d *amqp091.Delivery, id string, edit func(amqp091.Table)) amqp091.Publishing {
	h := make(amqp091.Table, len(d.Headers)+4)
	for k, v := range d.Headers {
		h[k] = v
	}
	for _, k := range DeliveryHeaders {
		delete(h, k)
	}
	h[HeaderRoutingKey] = originalKey(d)
	h[HeaderExchange] = originalExchange(d)
	edit(h)
	fitHeaders(h)
	return Republish(d, id, h)
}
