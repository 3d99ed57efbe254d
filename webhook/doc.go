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
//	X-Event-Id:      the event ID (stable across retries; unique per X-Event-Source)
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
// # Signatures
//
// With Config.Secrets set (WEBHOOK_SECRET), every request also carries the
// Standard Webhooks headers (https://www.standardwebhooks.com):
//
//	webhook-id:        MessageID: "<source>:<event id>", each part
//	                   percent-encoded; stable across retries, the key to
//	                   deduplicate on
//	webhook-timestamp: unix seconds of this attempt (each retry is signed anew)
//	webhook-signature: "v1,<base64 HMAC-SHA256>" per secret, space-separated
//
// The HMAC covers "<webhook-id>.<webhook-timestamp>.<body>", the body byte
// for byte as sent; the key is the base64 after "whsec_". The X-Event-*
// headers are not signed: a receiver that trusts them over plain http
// trusts whoever sits on the path. Verify (or a Verifier) checks a request
// as a receiver would: any secret may match, the timestamp within 5
// minutes, compared in constant time. Without secrets nothing is signed and
// no webhook-* header is sent. receiver/receiver.ts is the same check in
// TypeScript, with deduplication on webhook-id in PostgreSQL (tested by
// TestReceiverRecipe).
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
