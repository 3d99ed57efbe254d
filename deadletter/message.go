package deadletter

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Reasons that are not set by eventfleet workers but still explain why a
// message waits for an operator.
const (
	// ReasonDeliveryLimit: the broker dead-lettered the message because it
	// was delivered more often than the app queue's x-delivery-limit (a
	// worker crashed on it every time). Read from the x-death header.
	ReasonDeliveryLimit Reason = "delivery_limit"
	// ReasonUnrouted: a publisher kept the event in the unrouted queue
	// because no queue was bound for its routing key.
	ReasonUnrouted Reason = "unrouted"
	// ReasonUnknown: a message in the dead-letter queue that says nothing
	// about why (put there by hand, or by a foreign tool).
	ReasonUnknown Reason = "unknown"
)

// HeaderReplays counts how often an operator replayed the event from a
// dead-letter or unrouted queue (absent means never).
const HeaderReplays = "eventfleet-replays"

// headerAggregateID is the aggregate header of the wire contract
// (amqp.HeaderAggregateID; this package cannot import amqp, which imports it).
const headerAggregateID = "aggregate_id"

// idNamespace seeds the UUIDv5 ids of messages without a message_id. It must
// stay equal to the namespace in amqp/message.go, so that an operator sees
// the id the worker logged and handed to the handler.
var idNamespace = uuid.MustParse("3f0c1d7e-8a4b-4c1e-9a55-6b1f2f0e7d11")

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
	// HeaderRoutingKey and HeaderExchange, else the broker's x-death record.
	// Empty when neither says (a message put into the queue by hand).
	RoutingKey string
	Exchange   string
	// AggregateID is the aggregate_id header, when set.
	AggregateID string
	// Source is the publishing app (app_id).
	Source string
	// Reason says why the message is here: one of ReasonExhausted,
	// ReasonPermanent, ReasonUndecodable (HeaderReason), a broker reason such
	// as ReasonDeliveryLimit (x-death), ReasonOversized for a message a
	// worker rejected (x-death reason "rejected"), ReasonUnrouted, or
	// ReasonUnknown.
	Reason Reason
	// App is the app whose worker dead-lettered the event (HeaderApp).
	App string
	// Attempts is the last attempt number (HeaderAttempt; absent means 1).
	Attempts int
	// Replays counts earlier replays (HeaderReplays).
	Replays int
	// LastError is the last handler error (HeaderLastError).
	LastError string
	// Time is when the message arrived here: HeaderDeadAt, else the time of
	// the latest x-death record, else the publish timestamp (read by
	// EventTime, so milliseconds are understood). Zero if unknown.
	Time time.Time
	// FirstFailure is HeaderFirstFailure, zero when absent.
	FirstFailure time.Time
	// Deliveries is how often this queue delivered the message before this
	// read (the quorum queue's x-delivery-count): every Peek, List, dry run
	// and every scan that passed over it raise it by one.
	Deliveries int
	// Unreadable names the headers the connection left out because the AMQP
	// client cannot read them (HeaderUnreadable), empty when none.
	Unreadable string
	// WithheldBody is the size of a body the connection did not read because
	// it is over the connection's limit (HeaderWithheldBody); Body is empty
	// then. Zero when Body is the message's body.
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

// intHeader reads an integer header of any AMQP integer type.
func intHeader(h amqp091.Table, name string) (int64, bool) {
	switch v := h[name].(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	}
	return 0, false
}

func timeHeader(h amqp091.Table, name string) time.Time {
	s, _ := h[name].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// origin returns where the delivery was first published: our headers, else
// the oldest x-death record (the first dead-lettering kept the original
// exchange and routing key). Both are empty when neither says.
func origin(d *amqp091.Delivery) (exchange, key string) {
	key, _ = d.Headers[HeaderRoutingKey].(string)
	exchange, okX := d.Headers[HeaderExchange].(string)
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

// messageID is the message_id, or the UUIDv5 amqp/message.go's deliveryID
// derives from the same fields for a message without one (with the
// delivery's own exchange and routing key where the origin is unknown, as
// the worker does).
func messageID(d *amqp091.Delivery, exchange, key string) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	if key == "" {
		key = d.RoutingKey
	}
	if _, ok := d.Headers[HeaderExchange].(string); !ok && exchange == "" {
		exchange = d.Exchange
	}
	agg, _ := d.Headers[headerAggregateID].(string)
	return DerivedID(exchange, key, d.Timestamp, d.AppId, agg, d.Body)
}

// DerivedID is the id of a message published without a message_id: a UUIDv5
// of where it was first published (exchange, routing key), its timestamp, app
// id, aggregate id and body. Every redelivery, retry and dead letter of the
// message yields the same id. The worker and the dead-letter tools both use
// it, so an operator sees the id the handler saw.
func DerivedID(exchange, key string, ts time.Time, appID, aggregateID string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%d\x00%s\x00%s\x00", exchange, key, ts.Unix(), appID, aggregateID)
	b.Write(body)
	return uuid.NewSHA1(idNamespace, []byte(b.String())).String()
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
	m.AggregateID, _ = h[headerAggregateID].(string)
	m.App, _ = h[HeaderApp].(string)
	m.LastError, _ = h[HeaderLastError].(string)
	if n, ok := intHeader(h, HeaderAttempt); ok && n >= 1 {
		m.Attempts = int(n)
	}
	if n, ok := intHeader(h, HeaderReplays); ok && n >= 0 {
		m.Replays = int(n)
	}
	if n, ok := intHeader(h, "x-delivery-count"); ok && n >= 0 {
		m.Deliveries = int(n)
	}
	m.Unreadable, _ = h[HeaderUnreadable].(string)
	m.WithheldBody, _ = h[HeaderWithheldBody].(int64)
	m.FirstFailure = timeHeader(h, HeaderFirstFailure)
	xs := xDeaths(h)
	if r, ok := h[HeaderReason].(string); ok && r != "" {
		m.Reason = Reason(r)
		m.Time = timeHeader(h, HeaderDeadAt)
	} else if unrouted {
		m.Reason = ReasonUnrouted
	} else if len(xs) > 0 && xs[0].reason == "rejected" {
		// A worker rejects only a body over its limit, so that the broker
		// moves the message whole; no header of ours says so.
		m.Reason = ReasonOversized
	} else if len(xs) > 0 && xs[0].reason != "" {
		m.Reason = Reason(xs[0].reason)
	} else {
		m.Reason = ReasonUnknown
	}
	if m.Time.IsZero() && !unrouted && len(xs) > 0 {
		m.Time = EventTime(xs[0].time)
	}
	if m.Time.IsZero() {
		m.Time = EventTime(d.Timestamp)
	}
	return m
}

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

// deathHeaders record one life of the event; a replay starts a new one.
var deathHeaders = []string{HeaderAttempt, HeaderReason, HeaderDeadAt, HeaderLastError, HeaderFirstFailure, HeaderApp}

// ReplayPublishing is the message Replay publishes for m (read from d): the
// same properties, body and id, with the headers of its last life removed
// (HeaderAttempt, so the next delivery is attempt 1, HeaderReason,
// HeaderDeadAt, HeaderLastError, HeaderFirstFailure, HeaderApp, x-death and
// the broker's other delivery headers), HeaderRoutingKey and HeaderExchange
// kept (or set from x-death) so the event type survives, and HeaderReplays
// raised by one. Headers therefore stay the same size however often an event
// dies and is replayed. user_id (checked against the connection's user) and
// expiration are dropped.
func ReplayPublishing(d *amqp091.Delivery, m Message) amqp091.Publishing {
	h := make(amqp091.Table, len(d.Headers)+3)
	for k, v := range d.Headers {
		h[k] = v
	}
	// x-death would grow with every die→replay cycle.
	delete(h, "x-death")
	for _, k := range DeliveryHeaders {
		delete(h, k)
	}
	for _, k := range deathHeaders {
		delete(h, k)
	}
	if m.RoutingKey != "" {
		h[HeaderRoutingKey] = m.RoutingKey
		h[HeaderExchange] = m.Exchange
	}
	h[HeaderReplays] = int32(m.Replays + 1)
	return Republish(d, m.ID, h)
}
