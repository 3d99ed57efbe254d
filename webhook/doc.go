// Package webhook is an event.Handler that delivers each event to an HTTP
// endpoint, for apps that would rather receive events than consume a queue.
//
// # Request
//
// Every event becomes one POST to the configured URL. The body is the event's
// Data, byte for byte as it was published (an event without data sends "{}",
// as publishers do). The headers carry the envelope:
//
//	Content-Type:    application/json
//	User-Agent:      eventfleet-worker
//	X-Event-Id:      the event ID (stable across retries: deduplicate on it)
//	X-Event-Type:    the event type
//	X-Event-Attempt: 1 on the first delivery, 2 on the first retry, …
//	X-Aggregate-Id:  the aggregate ID, only when the event has one
//	X-Event-Source:  the publishing app (AMQP app_id), only when known
//	X-Event-Dropped-Headers: only when one of the headers above was left out
//	                 because its value cannot be an HTTP header value (a
//	                 foreign publisher's id, aggregate id or app id with a
//	                 control character other than tab); names them,
//	                 comma-separated. The event is still delivered.
//
// # Outcome
//
// The answer decides what the worker does with the event:
//
//   - 2xx: handled; the worker acks it.
//   - 408, 429, 5xx, a timeout or a network error: a plain error, so the worker
//     retries on its schedule (RETRY_DELAYS). Retry-After is not honoured: the
//     worker's delays are fixed per app.
//   - Anything else (3xx, other 4xx): retry.Permanent, so the event goes to the
//     dead-letter queue at once. Redirects are never followed, because a POST
//     that gets a redirect usually points at a misconfigured URL, and following
//     one with the event body could send it somewhere nobody meant.
//
// Errors name the status and start of the response body (at most
// SnippetLen bytes), which the worker keeps in the dead letter's
// eventfleet-last-error header. They never contain the URL's password or query
// string, which may hold a token.
package webhook
