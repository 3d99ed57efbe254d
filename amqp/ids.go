package amqp

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// idNamespace seeds the UUIDv5 ids of messages without a message_id.
// Changing it changes the id of every such message already in a queue.
var idNamespace = uuid.MustParse("3f0c1d7e-8a4b-4c1e-9a55-6b1f2f0e7d11")

// DerivedID is the id of a message published without a message_id: a UUIDv5
// of where it was first published (exchange, routing key), its timestamp, app
// id, aggregate id and body. Every redelivery, retry and dead letter of the
// message yields the same id. The worker and the dead-letter tools both use
// it (through MessageID), so an operator sees the id the handler saw.
func DerivedID(exchange, key string, ts time.Time, appID, aggregateID string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%d\x00%s\x00%s\x00", exchange, key, ts.Unix(), appID, aggregateID)
	b.Write(body)
	return uuid.NewSHA1(idNamespace, []byte(b.String())).String()
}

// MessageID is d's message_id, or for a message without one its DerivedID,
// given where it was first published (exchange, key). Two byte-identical
// messages without ids get the same id, which is what a deduplicating handler
// should see anyway.
func MessageID(d *amqp091.Delivery, exchange, key string) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	agg, _ := d.Headers[HeaderAggregateID].(string)
	return DerivedID(exchange, key, d.Timestamp, d.AppId, agg, d.Body)
}

// deliveryID is the id a worker gives the event d carries.
func deliveryID(d *amqp091.Delivery) string {
	return MessageID(d, originalExchange(d), originalKey(d))
}

// originalKey is the routing key the event was first published with: hops
// through delay queues deliver it with the queue's name as key instead.
func originalKey(d *amqp091.Delivery) string {
	if k, ok := d.Headers[HeaderRoutingKey].(string); ok && k != "" {
		return k
	}
	return d.RoutingKey
}

// originalExchange is the exchange the event was first published to.
func originalExchange(d *amqp091.Delivery) string {
	if x, ok := d.Headers[HeaderExchange].(string); ok {
		return x
	}
	return d.Exchange
}
