// Package redisfanout is an event.Handler that publishes each event it
// handles to a Redis pub/sub channel: the worker's HANDLER=redis, for the
// original design's real-time consumers, which `psubscribe('events:*')`.
//
// # What is sent
//
// PUBLISH <channel> <body>, where
//
//   - channel is Config.Channel with every "{type}" replaced by the event
//     type: "events:{type}" (the default) gives "events:CardAddedToLibraryEvent",
//     the channel the original design's publisher wrote to;
//   - body is the event's data (event.Event.Data, the AMQP body) byte for
//     byte, as the publisher sent it. Nothing is added or re-encoded. The
//     original design's publishers sent `{...event, aggregateId}`; events
//     that came that way (through `publisher relay` with RELAY_SOURCE=redis
//     or redis-stream, say) carry their aggregateId in the body already.
//     An event published with a separate aggregate id (the aggregate_id of
//     `publisher publish` or POST /events) does not get it added: its body
//     is whatever its publisher put in data. The event id, source and time
//     are not sent either: a subscriber that needs them reads the fleet's
//     queue instead (HANDLER=log or webhook).
//
// # Guarantees
//
// Handle returns once Redis answered the PUBLISH, so the worker acks the
// delivery only then. A Redis error, a refused connection or credentials,
// or no answer within Config.Timeout is returned as a plain error: the
// worker retries the event after RETRY_DELAYS, as for any handler failure,
// and dead-letters it after RETRY_MAX_ATTEMPTS (replayable with `worker dlq
// replay`). Nothing is retried in a loop here. Ping checks the settings
// at start (the worker logs a WARN when Redis does not answer).
//
// For the Redis subscribers this is at most once, by the nature of pub/sub:
// Redis keeps nothing, so a subscriber that is not connected at that moment
// (starting, reconnecting, or cut off by Redis for being slow) never gets
// the event, and PUBLISH to a channel nobody listens to succeeds and
// reaches no one (counted: eventfleet_redis_fanout_unheard_total). It is
// not exactly once either: when Redis published the event but its answer
// did not arrive in time, the retry publishes it again. Consumers that
// must see every event read a queue of their own (another APP_NAME).
package redisfanout
