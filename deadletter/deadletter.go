package deadletter

import (
	"time"
	"unicode/utf8"
)

// Reason says why an event was dead-lettered.
type Reason string

// Reasons set by eventfleet workers in HeaderReason.
const (
	ReasonExhausted   Reason = "exhausted"
	ReasonPermanent   Reason = "permanent"
	ReasonUndecodable Reason = "undecodable"
	// ReasonOversized: the body was larger than the worker's WORKER_MAX_BODY.
	// The worker rejects such a message without reading its body, and the
	// broker moves it to the dead-letter queue whole, with an x-death
	// record (reason "rejected") and none of eventfleet's headers.
	ReasonOversized Reason = "oversized"
)

// Headers eventfleet writes on retried and dead-lettered messages. They are
// part of the wire contract (README, "Wire contract").
const (
	// HeaderAttempt is the attempt number of the delivery that carries it
	// (absent means 1). Kept in our own header because RabbitMQ ≥3.13 ignores
	// x-death counts set by clients.
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
)

// MaxErrorLen bounds HeaderLastError so headers stay far below the broker's
// frame size however long a handler's error message is.
const MaxErrorLen = 1024

// QueueName is the dead-letter queue of an app's queue.
func QueueName(appQueue string) string { return appQueue + ".dead" }

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

// Stamp records a failure in headers (modified in place and returned; nil
// makes a new map): the last error, and the first failure time if not set yet.
func Stamp(headers map[string]any, errMsg string, now time.Time) map[string]any {
	if headers == nil {
		headers = map[string]any{}
	}
	headers[HeaderLastError] = TruncateError(errMsg)
	if _, ok := headers[HeaderFirstFailure].(string); !ok {
		headers[HeaderFirstFailure] = now.UTC().Format(time.RFC3339Nano)
	}
	return headers
}

// Kill records in headers that the event is dead for reason, on app's behalf.
func Kill(headers map[string]any, reason Reason, app, errMsg string, now time.Time) map[string]any {
	headers = Stamp(headers, errMsg, now)
	headers[HeaderReason] = string(reason)
	headers[HeaderDeadAt] = now.UTC().Format(time.RFC3339Nano)
	headers[HeaderApp] = app
	return headers
}
