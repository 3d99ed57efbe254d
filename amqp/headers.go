package amqp

import (
	"time"
	"unicode/utf8"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Headers of the wire contract (README, "Wire contract"): the one eventfleet's
// publishers set, and those its workers write on retried and dead-lettered
// messages.
const (
	// HeaderAggregateID carries Event.AggregateID.
	HeaderAggregateID = "aggregate_id"
	// HeaderAttempt is the attempt number of the delivery that carries it
	// (absent means 1). Kept in our own header because RabbitMQ 4.x ignores
	// x-death counts set by clients (docs/design.md, "Broker versions").
	HeaderAttempt = "eventfleet-attempt"
	// HeaderRoutingKey is the routing key the event was first published with;
	// hops through retry and dead-letter queues change the delivery's key.
	HeaderRoutingKey = "eventfleet-routing-key"
	// HeaderExchange is the exchange the event was first published to.
	HeaderExchange = "eventfleet-exchange"
	// HeaderFirstFailure is when the first attempt failed (RFC 3339, UTC).
	HeaderFirstFailure = "eventfleet-first-failure"
	// HeaderLastError is the last handler error, truncated to MaxErrorLen.
	HeaderLastError = "eventfleet-last-error"
	// HeaderReason is the Reason the event is dead.
	HeaderReason = "eventfleet-dead-reason"
	// HeaderDeadAt is when the event was dead-lettered (RFC 3339, UTC).
	HeaderDeadAt = "eventfleet-dead-at"
	// HeaderApp is the app whose worker dead-lettered the event.
	HeaderApp = "eventfleet-app"
	// HeaderReplays counts how often an operator replayed the event from a
	// dead-letter or unrouted queue (absent means never).
	HeaderReplays = "eventfleet-replays"
	// HeaderUnreadable names the headers (comma-separated, "…" for "and
	// what followed") that an eventfleet connection left out of a message
	// because the AMQP client cannot read them: nested deeper than 32
	// levels, more than 8192 entries in one table or array, an unknown
	// field type. The rest of the message is delivered; a hop or replay
	// carries this header on instead of the unreadable ones.
	HeaderUnreadable = "eventfleet-unreadable-headers"
	// HeaderWithheldBody is set, on delivery only, on a message whose body
	// was larger than the receiving connection's limit: the body's size in
	// bytes. The body was not read into memory; the delivery's body is
	// empty. Never published: a connection drops it from what it receives.
	HeaderWithheldBody = "eventfleet-withheld-body"
	// HeaderDropped lists foreign headers a hop left out so the message fits
	// MaxHeaderBytes (comma-separated names).
	HeaderDropped = "eventfleet-dropped-headers"
	// HeaderBridgedFrom is set by `publisher relay`'s Redis and NATS
	// sources on what they publish: the source and where the message came
	// from ("redis:<channel>", "redis-stream:<stream>", "nats:<subject>",
	// "jetstream:<stream>"). HANDLER=redis does not publish an event back
	// onto the pub/sub channel it came from (an endless loop otherwise).
	HeaderBridgedFrom = "eventfleet-bridged-from"
)

// MaxErrorLen bounds HeaderLastError so headers stay far below the broker's
// frame size however long a handler's error message is.
const MaxErrorLen = 1024

// TruncateError shortens msg to at most MaxErrorLen bytes without splitting a
// UTF-8 sequence, marking the cut with "…".
func TruncateError(msg string) string {
	if len(msg) <= MaxErrorLen {
		return msg
	}
	const mark = "…"
	cut := MaxErrorLen - len(mark)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + mark
}

// IntHeader reads header name of h as an integer of any AMQP integer type;
// ok is false when it is absent or not an integer.
func IntHeader(h amqp091.Table, name string) (n int64, ok bool) {
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

// TimeHeader reads header name of h as an RFC 3339 time (HeaderFirstFailure,
// HeaderDeadAt); the zero time when it is absent or not one.
func TimeHeader(h amqp091.Table, name string) time.Time {
	s, _ := h[name].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// attemptOf reads HeaderAttempt; absent or nonsense means 1.
func attemptOf(h amqp091.Table) int {
	n, _ := IntHeader(h, HeaderAttempt)
	if n < 1 || n > 1<<20 {
		return 1
	}
	return int(n)
}

// MarkFailed records a failed attempt in headers (modified in place and
// returned; nil makes a new map): the last error, and the first failure time
// if not set yet. A worker does this on every retry hop.
func MarkFailed(headers amqp091.Table, errMsg string, now time.Time) amqp091.Table {
	if headers == nil {
		headers = amqp091.Table{}
	}
	headers[HeaderLastError] = TruncateError(errMsg)
	if _, ok := headers[HeaderFirstFailure].(string); !ok {
		headers[HeaderFirstFailure] = now.UTC().Format(time.RFC3339Nano)
	}
	return headers
}

// MarkDead records in headers, as MarkFailed does, the last failure, and that
// the event is dead for reason on app's behalf: what a worker writes on the
// message it moves to the dead-letter queue.
func MarkDead(headers amqp091.Table, reason Reason, app, errMsg string, now time.Time) amqp091.Table {
	headers = MarkFailed(headers, errMsg, now)
	headers[HeaderReason] = string(reason)
	headers[HeaderDeadAt] = now.UTC().Format(time.RFC3339Nano)
	headers[HeaderApp] = app
	return headers
}
