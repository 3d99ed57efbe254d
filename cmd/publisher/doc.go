// Command publisher publishes domain events to the domain exchange with
// publisher confirms, from a file or over HTTP.
//
//	publisher publish [--file FILE]   one JSON event per line, from FILE or stdin
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
// broker may differ from the file's (PUBLISH_WINDOW=1 keeps it, slowly). Each
// event has PUBLISH_TIMEOUT to be confirmed, counted from when it is sent.
// When the broker stays unreachable for a whole PUBLISH_TIMEOUT, the remaining
// events are not sent (each would only wait out its own timeout) and count as
// failed. stdout gets exactly one line, "published=N failed=M", once reading
// has begun (a --file that cannot be opened is only an error on stderr).
//
// # serve
//
//	POST /events  one event object or a non-empty array of them
//	  202 {"ids": [...]}                      every event confirmed
//	  400 {"error": "...", "invalid": [...]}  bad JSON or event; "invalid" names array indexes
//	  405 (Allow: POST)                       another method
//	  413                                     body over PUBLISHER_MAX_BODY
//	  415                                     a Content-Type that is not JSON
//	  503 {"error", "confirmed", "unconfirmed"} (Retry-After) not all confirmed within PUBLISH_TIMEOUT
//	GET /healthz  200 {"status": "ok", "broker_connected": bool}
//	GET /readyz   200 when connected to the broker, else 503
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
