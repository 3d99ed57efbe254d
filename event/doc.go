// Package event defines what eventfleet moves: the Event envelope, the input
// format publishers accept, and the Handler and Registry that workers call.
//
// # Terms
//
//   - Event type: the name of a domain event, e.g. "CardAddedToLibraryEvent". It is
//     the AMQP routing key on the domain exchange and the AMQP "type" property.
//   - Event ID: a stable identifier for one event. Publishers set it as the AMQP
//     "message_id" (a UUIDv7 when the caller gives none); redeliveries and retries
//     keep it, so handlers can use it to drop duplicates (delivery is at least once).
//   - Data: the event's own JSON document. It is the whole AMQP body, so that apps
//     in any language publish and read plain JSON.
//   - Attempt: 1 for the first delivery to a handler, 2 for the first retry, and so on.
//
// The package has no AMQP dependency: package amqp maps events to and from AMQP
// messages.
package event
