// Command publisher publishes domain events to the domain exchange with
// publisher confirms, from a file or over HTTP.
//
//	publisher publish [--file FILE] [--failed FILE]   one JSON event per line, from FILE or stdin
//	publisher serve                   POST /events on PUBLISHER_ADDR
//
// Each event is a JSON object in the event.Input format:
//
//	{"type": "CardAddedToLibraryEvent", "aggregate_id": "lib-1", "id": "optional", "data": {...}}
//
// # publish
//
// Blank lines are skipped. Invalid lines are reported on stderr as
// "line N: reason" and counted as failed; the valid lines are still published.
// Up to PUBLISH_WINDOW events are in flight at once, so their order on the
// broker may differ from the file's (PUBLISH_WINDOW=1 keeps it, slowly).
//
// An event has no deadline of its own: it waits through reconnects (sent
// again with the same id) and is retried after a nack. The run gives up when
// no event was confirmed for PUBLISH_TIMEOUT (default 1m here) while events
// were waiting, when PUBLISH_DEADLINE (default 0: none) runs out, on a fatal
// publisher error, or at a second SIGINT/SIGTERM (the first stops sending and
// waits for the events in flight). Then the events in flight fail and the
// remaining ones are not sent; all count as failed. --failed FILE gets every
// event that was not confirmed, in input order, as input NDJSON with the id
// it was published under, so `publish --file FILE` sends exactly those again.
// stdout gets exactly one line, "published=N failed=M", once reading has
// begun (a --file that cannot be opened, or a --failed file that cannot be
// created, is only an error on stderr).
//
// # serve
//
// POST /events on PUBLISHER_ADDR is package ingest's Handler (its doc lists
// the answers: 202 once every event is confirmed, 400, 405, 413, 415, 503
// with Retry-After). Beside it, /healthz and /readyz answer as internal/admin
// answers them on METRICS_ADDR, in the same JSON:
//
//	GET /healthz  200 {"status": "ok", "role": "publisher", "app": ..., "instance": ...}
//	GET /readyz   200 {"status": "ready", ...} when connected to the broker,
//	              else 503 {"status": "not ready", "reason": "broker not connected", ...}
//
// SIGTERM or SIGINT stops accepting connections, lets requests in flight finish
// within SHUTDOWN_TIMEOUT, then stops the publisher. Logs are JSON on stderr;
// the broker address is logged with its password redacted.
//
// # Exit codes
//
//	0  success (publish: every line published; serve: clean shutdown)
//	1  events failed, the publisher stopped on a fatal error (such as
//	   amqp.ErrTopologyMismatch), or the shutdown timed out
//	2  usage or configuration error (the message names the variable)
package main
