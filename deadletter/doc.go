// Package deadletter is what an operator does with the events that wait in a
// dead-letter or unrouted queue: an Inspector lists, peeks at, replays and
// purges them (the library behind "worker dlq"). It reads and writes them by
// package amqp's wire contract — the queue names (amqp.DeadQueue,
// amqp.UnroutedQueue), the headers a worker records a death in
// (amqp.HeaderReason and the others), the reasons, the message ids
// (amqp.MessageID) — and replays through an amqp.Publisher, so nothing of the
// contract is defined twice.
//
// An event is dead when retrying cannot help or has not helped:
//
//   - amqp.ReasonExhausted: the handler failed RETRY_MAX_ATTEMPTS times.
//   - amqp.ReasonPermanent: the handler returned retry.Permanent(err), or no
//     handler exists for the event type.
//   - amqp.ReasonUndecodable: the message is not an event eventfleet can read
//     (body not JSON, a content type that is not JSON, a bad type).
//   - amqp.ReasonOversized: the body was over the worker's limit; the broker
//     moved the message, which carries only its x-death record.
//   - ReasonDeliveryLimit ("delivery_limit"): the broker itself dead-lettered the
//     message because it was delivered more often than the queue's
//     x-delivery-limit (a worker crashed on it each time). The broker records
//     this in the x-death header, not in ours; ReadMessage reads both.
//
// Dead events sit in the app's queue "events_<app>.dead" with amqp's headers
// until an operator looks at them. The worker publishes them there with a
// publisher confirm before it acks the original, so the hop is at least once.
// Events no queue was bound for sit in "<exchange>.unrouted" (ReasonUnrouted).
//
// # Operations
//
// ForApp and ForUnrouted return an Inspector for one of those queues (give it
// a Publisher to replay):
//
//   - List counts the messages by event type and by reason, with the oldest
//     and newest time.
//   - Peek returns messages (id, type, aggregate, reason, attempts, last error,
//     time, body) and leaves every one of them in place.
//   - Replay sends the selected messages back: dead letters to the app's own
//     queue only (its exchange amqp.HopsExchange, routing key "events_<app>"), unrouted
//     events to the exchange with their original routing key. Each copy is
//     mandatory, persistent and confirmed (amqp.Publisher.SendMessage, many
//     in flight), with the headers of its last life removed
//     (ReplayPublishing: attempt 1 again, no dead-letter headers, no x-death,
//     amqp.HeaderReplays raised), so headers do not grow however often an
//     event dies and is replayed. The original is removed only after the
//     broker confirmed the copy and did not return it; a killed replay leaves
//     at most a duplicate, never a loss, and an unrouted event that is still
//     unroutable stays where it was (amqp.ErrReturned).
//   - Purge deletes the selected messages, or the whole queue.
//
// Filter selects by type, id and age for Peek, Replay and Purge.
//
// # What reading does to the queue
//
// Quorum queues cannot be browsed: the only way to read a message is to take
// delivery of it. Every operation therefore consumes the queue with manual
// acknowledgements and a prefetch window as large as the queue (at most
// MaxScan), acknowledges only what it removes, reads on until it has been
// delivered every message the queue gives back first, and ends by closing its
// channel; it never nacks, never cancels its consumer and never uses
// basic.get, each of which would reorder the queue. So:
//
//   - nothing is lost and the order is kept, also when the process is killed;
//   - every message read has its delivery count (x-delivery-count,
//     Message.Deliveries) raised by one, in practice every message in the
//     queue, also for a Peek of one; the dead-letter and unrouted queues have
//     no delivery limit (on RabbitMQ 4.x, where a quorum queue's default is
//     20, only those package amqp declared there with x-delivery-limit -1, or
//     that a policy gave one: docs/design.md, "Broker versions"), so the count
//     only informs, and Replay strips it;
//   - a queue whose given-back list is longer than MaxScan cannot be kept in
//     order: the operation says Incomplete;
//   - operations wait (at most 3 s) for their consumer to go before they
//     return, and refuse with ErrBusy a queue that still has other consumers.
//
// The broker behaviour behind each point, measured on RabbitMQ 3.10.8 and
// pinned by TestQuorumQueue_ReturnOrder, is in docs/design.md ("Reading a
// quorum dead-letter queue").
package deadletter
