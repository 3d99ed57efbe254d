// Package ingest accepts events over HTTP: POST /events takes one event
// object or a non-empty JSON array of them, in the event.Input format, and
// answers only once the broker has confirmed every one of them.
//
//	202 {"ids": [...]}                          every event confirmed
//	400 {"error": "...", "invalid": [...]}      bad JSON or event; nothing published
//	405 (Allow: POST)                           another method
//	413                                         body over Config.MaxBody
//	415                                         a Content-Type that is not JSON
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
// A traceparent header is continued: the events' publish spans, and the
// handlers of the workers that consume them, join the client's trace.
//
// The Handler serves only the events endpoint. The operational endpoints
// (/healthz, /readyz, /metrics) come from internal/admin, mounted beside it
// by the binary. Config.Middleware wraps the events endpoint alone: it is
// where request authentication and rate limits belong, in front of the body
// being read, and never in front of the health checks.
package ingest
