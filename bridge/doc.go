// Package bridge is what the relay's Redis and NATS sources share: how a
// message published by the original design's publishers
// (`redis.publish('events:<EventName>', JSON.stringify({...event, aggregateId}))`,
// `nats.publish('events.<EventName>', ...)`) becomes an event.Event for the
// confirmed Publisher, and the sentinel errors for messages that cannot.
//
// The sources themselves live in their own packages (redisbridge,
// natsbridge); each settles a message at its source only after the broker
// confirmed it.
package bridge
