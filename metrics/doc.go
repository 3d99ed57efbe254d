// Package metrics holds eventfleet's Prometheus metrics.
//
// A *Metrics is made once per process with New and handed to the amqp
// Publisher and Worker through their configs; a nil *Metrics records nothing,
// so the library costs nothing for users who do not want metrics. Every method
// is safe for concurrent use.
//
// Names follow Prometheus conventions: the eventfleet_ prefix, base units
// (seconds), _total on counters. Labels are bounded: role, app, outcome and
// queue come from configuration; type is the event type, which publishers
// choose, so at most MaxTypes distinct values are kept and any further type
// is counted as "other" (a stream of random or malformed types must not grow
// the scrape without limit).
//
//	eventfleet_published_total{type,outcome}       confirmed|returned|nacked|error
//	eventfleet_publish_confirm_seconds             publish → broker confirm
//	eventfleet_consumed_total{app,type,outcome}    ack|retry|dead_letter|requeue
//	eventfleet_handler_duration_seconds{app,type}  one handler call
//	eventfleet_deliveries_in_flight{app}           handler calls running now
//	eventfleet_connection_up{role}                 1 while connected
//	eventfleet_reconnects_total{role}              connections re-established
//	eventfleet_blocked{role}                       1 while the broker blocks publishing
//	eventfleet_blocked_seconds_total{role}         time spent blocked
//	eventfleet_queue_messages{queue,kind}          sampled depth: app|retry|dead_letter
//	eventfleet_build_info{version,revision,go_version}  always 1
//
// Roles: "publisher" (a Publisher), "consumer" (a Worker's consuming
// connection), "hops" (the connection a Worker moves events to retry and
// dead-letter queues on). Connections of one role share their series: two
// Publishers given one *Metrics count into the same publisher series.
package metrics
