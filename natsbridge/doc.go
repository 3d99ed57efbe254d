// Package natsbridge is the relay's NATS source: it reads the messages the
// original design's NATS publishers send
// (`nats.publish('events.<EventName>', JSON.stringify({...event, aggregateId, timestamp}))`)
// and publishes each as an event through the confirmed Publisher
// (*amqp.Publisher), settling it at NATS only after the broker confirmed.
//
// # Terms
//
//   - Subject is a pattern with a wildcard (default "events.*"). A message's
//     event type is its subject without the pattern's literal prefix:
//     "events.CardAddedToLibraryEvent" carries CardAddedToLibraryEvent; with
//     "events.>", "events.billing.InvoicePaid" carries billing.InvoicePaid.
//     The aggregate is the body's aggregateId; the body is published as it
//     came (bridge.Event).
//   - ModeCore ("nats") subscribes on core NATS. It is at most once by
//     nature: a message published while the bridge is down, disconnected
//     or too slow is gone. Each message gets a fresh UUIDv7, never an id
//     from its content (two identical events stay two). nats.go buffers at
//     most PendingMsgs/PendingBytes for the subscription; beyond that NATS
//     drops messages (a slow consumer), and the bridge counts them
//     (Stats.Dropped, eventfleet_bridge_dropped_total) together with
//     reconnects (eventfleet_bridge_reconnects_total), after which what was
//     published meanwhile is lost uncounted. A message the broker does not
//     confirm is tried MaxAttempts times, with Backoff, then dropped and
//     counted. Besides nats.go's buffer, the bridge holds at most 2×Window
//     messages and WindowBytes of bodies (default 16 MiB).
//   - ModeJetStream ("jetstream") reads Stream through the durable pull
//     consumer Consumer with explicit acks: at least once. The id is the
//     message's Nats-Msg-Id header when present, else "<stream>:<stream
//     sequence>", so a redelivery keeps its id and the fleet's inboxes drop
//     the copy. MaxAckPending is Window: a stream faster than the broker
//     waits in the stream, not in memory; the pull is bounded by WindowBytes
//     too. Messages held (waiting behind a batch or a pause) are marked in
//     progress every AckWait/3, so they are not delivered again while the
//     bridge still has them. Redeliveries that may be duplicates (all but
//     those after a Nak at Stop or after the broker returned the message
//     as unroutable, when the broker has no copy) are counted in
//     Stats.Redelivered. A message the broker does not confirm is Naked
//     with a delay growing with its deliveries (Backoff), counted in
//     Stats.Retried (eventfleet_bridge_retried_total), and logged at WARN
//     (at most once a second) from its 5th delivery; the bridge pauses
//     after a batch of which nothing was confirmed: no hot loop. A
//     Nats-Msg-Id that cannot be an event id (over 255 bytes, control
//     characters) is replaced by the stream sequence id (SeqID), logged once.
//
// # The stream and the consumer
//
// The bridge creates the durable consumer (or updates it to its Config:
// AckWait, MaxAckPending, one filter subject). Relays sharing a consumer
// share these settings, MaxAckPending included (it bounds all of them
// together): the last relay started wins, and one that changes them logs a
// WARN saying what changed. A consumer deleted under a running bridge is
// created again (logged at WARN): with DeliverAll it delivers the whole
// stream again, and the ids make the copies harmless. A consume that ends
// by itself, or a consumer found gone after a reconnect or a missed
// heartbeat, is set up again the same way; meanwhile Healthy reports it.
//
// The bridge creates the stream only at Start, when it is missing,
// capturing Subject with file storage and the server's default limits, and
// logs that it did; an existing stream is used as it is, its limits and
// retention the operator's. A stream deleted (or deleted and made again)
// under a running bridge ends it with ErrStreamLost, logged at ERROR. A
// new stream restarts its sequences, so the ids of messages without a
// Nats-Msg-Id carry the stream's creation time (SeqID): a bridge started
// again on a new stream never repeats an id the fleet already saw. Only
// nats-server 2.9 APIs are used (no multi-filter consumers).
//
// # Rejected messages
//
// A message that cannot be an event (bridge.ErrRejected: a subject that
// names no valid type, a body that is not a JSON object, an unusable
// aggregateId) is never retried. In ModeJetStream it is terminated (Term):
// never delivered again, still in the stream. It is logged once, as
// "message set aside", with its stream_seq, the reason and its subject cut
// to 64 bytes (such lines at most once a second), and counted
// (eventfleet_bridge_rejected_total). An operator reads it with
// `nats stream get <stream> <stream_seq>`, and after fixing the publisher
// may republish it. In ModeCore it is logged and dropped.
//
// # Lifecycle
//
// Start dials NATS once (ConnectTimeout) and sets the source up, failing
// with ErrConnect or ErrJetStream; afterwards nats.go reconnects by itself
// for as long as the bridge runs. Stop lets the batch in flight finish
// until its context ends; JetStream messages taken and not settled,
// including those nats.go still delivers until its consume is closed, are
// Naked for the next relay.
package natsbridge
