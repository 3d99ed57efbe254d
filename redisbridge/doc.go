// Package redisbridge relays the original design's Redis events to the
// fleet: each message becomes an event.Event (package bridge) published
// through the confirmed Publisher. Two sources (Config.Source):
//
//   - SourcePubSub ("redis"): PSUBSCRIBE Config.Pattern (default "events:*"),
//     the channels `redis.publish('events:<EventName>', body)` writes to. The
//     event type is what the pattern's "*" matched; each message gets a fresh
//     UUIDv7 id, since pub/sub has no id and no redelivery. At most once by
//     nature: a message published while the bridge is down, reconnecting, or
//     so far behind that Redis cut it off (client-output-buffer-limit pubsub,
//     32 MiB by default) is gone, and nobody can say how many. Reconnects are
//     counted (eventfleet_bridge_reconnects_total); so are messages taken
//     and then abandoned at a hard stop (Dropped).
//   - SourceStream ("redis-stream"): XREADGROUP on Config.Stream (default
//     "events") as Config.Consumer of Config.Group, entries with the fields
//     "type" and "event" (the body the pub/sub publisher sends). The id is
//     "<stream>:<entry-id>", the same on every delivery, so receivers can
//     deduplicate. An entry is XACKed only after the broker confirmed it:
//     at least once. Entries left pending by a consumer that died are
//     claimed (XAUTOCLAIM) after Config.ClaimIdle and published again
//     (Redelivered); a live bridge renews its own entries in flight, so a
//     slow broker does not make them claimable. An entry that cannot be an
//     event is copied to "<stream>:rejected" with a "reason" field and then XACKed (Rejected):
//     kept for an operator, never retried in a loop; so is a body larger
//     than bridge.MaxBody (16 MiB). An entry deleted before it was relayed
//     (XDEL, or trimmed by XADD MAXLEN / XTRIM: trimming does not spare
//     entries not yet read or acked) is lost: it is XACKed, logged and
//     counted Dropped. Size MAXLEN for the longest outage of the relay.
//
// Memory is bounded under a burst faster than the broker: at most
// Config.Window messages are taken and not yet settled. The bridge reads the
// next message only when one of those slots is free, so the rest waits in
// Redis (in the stream, or for pub/sub in Redis's output buffer for this
// client until Redis cuts it off); the bridge holds no queue of its own.
// Pub/sub is read with PubSub.Receive, not PubSub.Channel: go-redis's channel
// buffers up to its size (100 by default) in front of the reader and, when
// it stays full for a minute, drops a message with a line on its own logger
// that no metric sees. With Receive the only buffer is the connection's
// reader; backpressure reaches Redis, whose cut-off shows as a reconnect.
//
// Events of one aggregate are published one confirm apart, in the order the
// source delivered them; other aggregates' events fill the window meanwhile.
//
// A group that disappears while the bridge runs (deleted by hand, or with
// its stream) is created again from the stream's start: what is still in
// the stream is published again, under the same ids.
package redisbridge
