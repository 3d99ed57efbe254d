// Package eventlog is an event.Handler that writes each event it handles as
// one JSON line to an io.Writer: the worker's HANDLER=log, for trying a
// deployment out, for debugging, and for piping events into tools such as jq.
//
// # Line format
//
// One JSON object per event, ended by "\n", with these fields in this order:
//
//	id            the event ID (stable across retries)
//	type          the event type
//	aggregate_id  the aggregate ID, "" when the event has none
//	source        the publishing app (AMQP app_id); left out when unknown
//	time          when the event was published, RFC 3339 with nanoseconds, UTC;
//	              left out when the publisher set no timestamp or one that
//	              cannot be a time (see amqp.EventTime)
//	attempt       1 on the first delivery, 2 on the first retry, …
//	data          the event's JSON document, compacted onto the line
//
// Example:
//
//	{"id":"0190…","type":"CardAdded","aggregate_id":"lib-1","source":"catalog","time":"2026-11-29T10:00:00Z","attempt":1,"data":{"card":7}}
//
// Lines from concurrent handlers never interleave: one Write at a time, each
// of whole lines. Handlers that finish while a line is being written have
// their lines written together by the next Write, so a busy worker makes
// fewer write calls than events; every Handle still returns only once its
// own line is written, so an event is acked after its line is out. A failed
// write is returned as a plain error, for every event whose line it held, so
// the worker retries those events later.
package eventlog
