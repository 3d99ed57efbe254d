// Package ingest accepts events over HTTP: POST /events takes one event
// object or a non-empty JSON array of them, in the event.Input format, and
// answers only once the broker has confirmed every one of them.
//
//	202 {"ids": [...]}                          every event confirmed
//	400 {"error": "...", "invalid": [...]}      bad JSON or event, or nested over Config.MaxDepth
//	401 {"error"} (WWW-Authenticate: Bearer)    no key, or an unknown one (under AuthKeys)
//	403 {"error"}                               an event type outside the caller's key
//	405 (Allow: POST)                           another method
//	408 {"error"}                               the body stopped arriving (the server's read timeout)
//	413 {"error"}                               body over Config.MaxBody, or over Config.MaxEvents events
//	415 {"error"}                               no Content-Type, or one that is not JSON
//	429 {"error"} (Retry-After)                 over the caller's Config.Rate, or no room in Config.MaxInFlight
//	503 {"error", "confirmed", "unconfirmed"}   not all confirmed within Config.Timeout
//
// Every answer is a JSON object. A 400 names the bad elements of an array by
// index ("invalid", at most 20 listed) and publishes none of the valid ones,
// so that a client fixes and resends the whole request. A 503 carries
// Retry-After and lists which ids were confirmed and which not: the client
// publishes the unconfirmed ones again with the same ids, and consumers
// drop the duplicates that a lost confirm makes. Events without an id get a
// UUIDv7, returned in the answer.
//
// # Callers
//
// Under AuthKeys, the default, every request needs "Authorization: Bearer
// <key>" with a key of Config.Keys, checked on the headers before the body
// is read. A key file has one line per key, "<caller> <sha256 hex of the
// key> [<type>,…]"; ";" also ends a line, and lines starting with "#" are
// comments. Only hashes are stored; Keys.Authenticate hashes the presented
// token and compares it with every line in constant time. The types are
// topic binding keys, checked like EVENT_TYPES and matched like a topic
// exchange (amqp.MatchBindingKey); none, or "#", allows any type; a request
// with one type outside them is refused whole (403). A caller may have
// several lines, each its own key and types: a key is rotated by adding
// the new line, moving the caller over, and removing the old one. The
// caller's name becomes every event's Source (the AMQP app_id), so
// receivers deduplicate per (source, id) with a source nobody can forge;
// ids stay the caller's, so that a retried request is idempotent. AuthNone
// accepts anyone, and the events keep the Publisher's own app id.
//
// # Limits
//
// A request is refused whole, and nothing of it is published, when it
// breaks a limit; the checks run from the cheapest to the costliest: the
// key (under AuthKeys), method, Content-Type, body size (MaxBody, 1 MiB),
// then one pass over the raw bytes counting the events (MaxEvents, 500) and
// the nesting (MaxDepth, 64, counted from the event object, which is level
// 1, so data may nest 63 levels), so that an oversized array is refused
// before it is decoded (only JSON's whitespace may surround the body, so
// the scan and the decoder see the same document); then decoding and
// validation, the key's types, the caller's rate (Rate events/s, a token
// bucket of Burst; off by default), and last the room in flight
// (MaxInFlight events awaiting confirms across all requests, 10,000). A
// request never waits for room or tokens: it is answered 429 at once, with
// Retry-After in seconds (until the caller's bucket holds the request's
// events; 1 for room in flight), and tokens taken by a request then refused
// for room are given back.
//
// The Content-Type is required and must be JSON (application/json,
// text/json or any +json type): a browser page may post a form or
// text/plain cross-site without asking, but not JSON.
//
// The answers that list ids (202, 503) are bounded: at most MaxEvents ids,
// each at most 255 bytes (event.Validate) and at most 512 bytes as JSON, so
// under 260 KB with the defaults (about 20 KB with generated UUIDv7 ids).
//
// # Access log
//
// Every request the Handler serves gets one INFO line, "request", on
// Config.AccessLog: caller, remote (the peer address), method, path,
// status, events (counted, also for a refused request), duration, bytes
// (of body read) and, when the events went to the broker (a 202, or a 503
// whose events may be partly published), ids: the first three. No body and
// no header is logged, so no key material.
//
// A traceparent header is continued: the events' publish spans, and the
// handlers of the workers that consume them, join the client's trace.
//
// The Handler serves only the events endpoint. The operational endpoints
// (/healthz, /readyz, /metrics) come from internal/admin, mounted beside it
// by the binary. Config.Middleware wraps the events endpoint alone, inside
// the authentication (so it sees only authenticated requests) and never in
// front of the health checks; the access log is outside both, so that
// their refusals are logged too.
package ingest
