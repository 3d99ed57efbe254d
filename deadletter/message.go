package deadletter

import (
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
)

// Reasons that are not set by eventfleet workers (those are amqp's) but still
// explain why a message waits for an operator.
const (
	// ReasonDeliveryLimit: the broker dead-lettered the message because it
	// was delivered more often than the app queue's x-delivery-limit (a
	// worker crashed on it every time). Read from the x-death header.
	ReasonDeliveryLimit amqp.Reason = "delivery_limit"
	// ReasonUnrouted: a publisher kept the event in the unrouted queue
	// because no queue was bound for its routing key.
	ReasonUnrouted amqp.Reason = "unrouted"
	// ReasonUnknown: a message in the dead-letter queue that says nothing
	// about why (put there by hand, or by a foreign tool).
	ReasonUnknown amqp.Reason = "unknown"
)

// Message is what an operator needs to know about one message in a
// dead-letter or unrouted queue. Read it with Inspector.Peek.
type Message struct {
	// ID is the message_id, or for a message without one the id a worker
	// derives for it (a UUIDv5 of exchange, routing key, timestamp, app id,
	// aggregate id and body), so it matches the worker's logs.
	ID string
	// Type is the event type: the type property, else the original routing
	// key (how a worker reads it), else the delivery's routing key.
	Type string
	// RoutingKey and Exchange are where the event was first published:
	// amqp.HeaderRoutingKey and amqp.HeaderExchange, else the broker's
	// x-death record.
	// Empty when neither says (a message put into the queue by hand).
	RoutingKey string
	Exchange   string
	// AggregateID is the aggregate_id header, when set.
	AggregateID string
	// Source is the publishing app (app_id).
	Source string
	// Reason says why the message is here: one of amqp.ReasonExhausted,
	// amqp.ReasonPermanent, amqp.ReasonUndecodable (amqp.HeaderReason), a
	// broker reason such as ReasonDeliveryLimit (x-death),
	// amqp.ReasonOversized for a message a worker rejected (x-death reason
	// "rejected"), ReasonUnrouted, or ReasonUnknown.
	Reason amqp.Reason
	// App is the app whose worker dead-lettered the event (amqp.HeaderApp).
	App string
	// Attempts is the last attempt number (amqp.HeaderAttempt; absent means 1).
	Attempts int
	// Replays counts earlier replays (amqp.HeaderReplays).
	Replays int
	// LastError is the last handler error (amqp.HeaderLastError).
	LastError string
	// Time is when the message arrived here: amqp.HeaderDeadAt, else the
	// time of the latest x-death record, else the publish timestamp (read by
	// amqp.EventTime, so milliseconds are understood). Zero if unknown.
	Time time.Time
	// FirstFailure is amqp.HeaderFirstFailure, zero when absent.
	FirstFailure time.Time
	// Deliveries is how often this queue delivered the message before this
	// read (the quorum queue's x-delivery-count): every Peek, List, dry run
	// and every scan that passed over it raise it by one.
	Deliveries int
	// Unreadable names the headers the connection left out because the AMQP
	// client cannot read them (amqp.HeaderUnreadable), empty when none.
	Unreadable string
	// WithheldBody is the size of a body the connection did not read because
	// it is over the connection's limit (amqp.HeaderWithheldBody); Body is
	// empty then. Zero when Body is the message's body.
	WithheldBody int64
	// ContentType and Body are the message's, unchanged.
	ContentType string
	Body        []byte
	// Headers are the message's headers as delivered (read-only).
	Headers amqp091.Table
}

// xDeath is one entry of the broker's x-death header.
type xDeath struct {
	reason, queue, exchange string
	keys                    []string
	time                    time.Time
}

// xDeaths reads the x-death header, most recent entry first.
func xDeaths(h amqp091.Table) []xDeath {
	list, _ := h["x-death"].([]any)
	var out []xDeath
	for _, e := range list {
		t, ok := e.(amqp091.Table)
		if !ok {
			continue
		}
		var x xDeath
		x.reason, _ = t["reason"].(string)
		x.queue, _ = t["queue"].(string)
		x.exchange, _ = t["exchange"].(string)
		x.time, _ = t["time"].(time.Time)
		keys, _ := t["routing-keys"].([]any)
		for _, k := range keys {
			if s, ok := k.(string); ok {
				x.keys = append(x.keys, s)
			}
		}
		out = append(out, x)
	}
	return out
}

// origin returns where the delivery was first published: our headers, else
// the oldest x-death record (the first dead-lettering kept the original
// exchange and routing key). Both are empty when neither says.
func origin(d *amqp091.Delivery) (exchange, key string) {
	key, _ = d.Headers[amqp.HeaderRoutingKey].(string)
	exchange, okX := d.Headers[amqp.HeaderExchange].(string)
	if key != "" && okX {
		return exchange, key
	}
	if xs := xDeaths(d.Headers); len(xs) > 0 {
		first := xs[len(xs)-1]
		if key == "" && len(first.keys) > 0 {
			key = first.keys[0]
		}
		if !okX {
			exchange = first.exchange
		}
	}
	return exchange, key
}

// messageID is amqp.MessageID of the message's origin: the id a worker gave
// it (with the delivery's own exchange and routing key where the origin is
// unknown, as the worker does).
func messageID(d *amqp091.Delivery, exchange, key string) string {
	if key == "" {
		key = d.RoutingKey
	}
	if _, ok := d.Headers[amqp.HeaderExchange].(string); !ok && exchange == "" {
		exchange = d.Exchange
	}
	return amqp.MessageID(d, exchange, key)
}

// ReadMessage describes a delivery from a dead-letter queue (unrouted false)
// or an unrouted queue (unrouted true).
func ReadMessage(d *amqp091.Delivery, unrouted bool) Message {
	exchange, key := origin(d)
	m := Message{
		ID:          messageID(d, exchange, key),
		Type:        d.Type,
		RoutingKey:  key,
		Exchange:    exchange,
		Source:      d.AppId,
		ContentType: d.ContentType,
		Body:        d.Body,
		Headers:     d.Headers,
		Attempts:    1,
	}
	if m.Type == "" {
		m.Type = key
	}
	if m.Type == "" {
		m.Type = d.RoutingKey
	}
	h := d.Headers
	m.AggregateID, _ = h[amqp.HeaderAggregateID].(string)
	m.App, _ = h[amqp.HeaderApp].(string)
	m.LastError, _ = h[amqp.HeaderLastError].(string)
	if n, ok := amqp.IntHeader(h, amqp.HeaderAttempt); ok && n >= 1 {
		m.Attempts = int(n)
	}
	if n, ok := amqp.IntHeader(h, amqp.HeaderReplays); ok && n >= 0 {
		m.Replays = int(n)
	}
	if n, ok := amqp.IntHeader(h, "x-delivery-count"); ok && n >= 0 {
		m.Deliveries = int(n)
	}
	m.Unreadable, _ = h[amqp.HeaderUnreadable].(string)
	m.WithheldBody, _ = h[amqp.HeaderWithheldBody].(int64)
	m.FirstFailure = amqp.TimeHeader(h, amqp.HeaderFirstFailure)
	xs := xDeaths(h)
	if r, ok := h[amqp.HeaderReason].(string); ok && r != "" {
		m.Reason = amqp.Reason(r)
		m.Time = amqp.TimeHeader(h, amqp.HeaderDeadAt)
	} else if unrouted {
		m.Reason = ReasonUnrouted
	} else if len(xs) > 0 && xs[0].reason == "rejected" {
		// A worker rejects only a body over its limit, so that the broker
		// moves the message whole; no header of ours says so.
		m.Reason = amqp.ReasonOversized
	} else if len(xs) > 0 && xs[0].reason != "" {
		m.Reason = amqp.Reason(xs[0].reason)
	} else {
		m.Reason = ReasonUnknown
	}
	if m.Time.IsZero() && !unrouted && len(xs) > 0 {
		m.Time = amqp.EventTime(xs[0].time)
	}
	if m.Time.IsZero() {
		m.Time = amqp.EventTime(d.Timestamp)
	}
	return m
}

// deathHeaders record one life of the event; a replay starts a new one.
var deathHeaders = []string{amqp.HeaderAttempt, amqp.HeaderReason, amqp.HeaderDeadAt, amqp.HeaderLastError,
	amqp.HeaderFirstFailure, amqp.HeaderApp}

// ReplayPublishing is the message Replay publishes for m (read from d): the
// same properties, body and id (amqp.Republish), with the headers of its
// last life removed (amqp.HeaderAttempt, so the next delivery is attempt 1,
// amqp.HeaderReason, amqp.HeaderDeadAt, amqp.HeaderLastError,
// amqp.HeaderFirstFailure, amqp.HeaderApp, x-death and the broker's other
// delivery headers), amqp.HeaderRoutingKey and amqp.HeaderExchange kept (or
// set from x-death) so the event type survives, and amqp.HeaderReplays raised
// by one. Headers therefore stay the same size however often an event dies
// and is replayed. user_id (checked against the connection's user) and
// expiration are dropped.
func ReplayPublishing(d *amqp091.Delivery, m Message) amqp091.Publishing {
	h := make(amqp091.Table, len(d.Headers)+3)
	for k, v := range d.Headers {
		h[k] = v
	}
	// x-death would grow with every die→replay cycle.
	delete(h, "x-death")
	for _, k := range amqp.DeliveryHeaders {
		delete(h, k)
	}
	for _, k := range deathHeaders {
		delete(h, k)
	}
	if m.RoutingKey != "" {
		h[amqp.HeaderRoutingKey] = m.RoutingKey
		h[amqp.HeaderExchange] = m.Exchange
	}
	h[amqp.HeaderReplays] = int32(m.Replays + 1)
	return amqp.Republish(d, m.ID, h)
}
