// Package deadletter names the dead-letter side of eventfleet's wire contract:
// the queue names, the reasons an event dies, and the headers that record why;
// and it gives operators an Inspector to list, peek at, replay and purge dead
// letters and unrouted events (the library behind "worker dlq").
//
// An event is dead when retrying cannot help or has not helped:
//
//   - ReasonExhausted: the handler failed RETRY_MAX_ATTEMPTS times.
//   - ReasonPermanent: the handler returned retry.Permanent(err), or no handler
//     exists for the event type.
//   - ReasonUndecodable: the message is not an event eventfleet can read (body not
//     JSON, a content type that is not JSON, a bad type).
//   - ReasonDeliveryLimit ("delivery_limit"): the broker itself dead-lettered the
//     message because it was delivered more often than the queue's
//     x-delivery-limit (a worker crashed on it each time). The broker records
//     this in the x-death header, not in ours; ReadMessage reads both.
//
// Dead events sit in the app's queue "events_<app>.dead" with the headers below
// until an operator looks at them. The worker publishes them there with a
// publisher confirm before it acks the original, so the hop is at least once.
// Events no queue was bound for sit in "<exchange>.unrouted" (ReasonUnrouted).
//
// # Operations
//
// ForApp and ForUnrouted return an Inspector for one of those queues:
//
//   - List counts the messages by event type and by reason, with the oldest
//     and newest time.
//   - Peek returns messages (id, type, aggregate, reason, attempts, last error,
//     time, body) and leaves every one of them in place.
//   - Replay sends the selected messages back: dead letters to the app's own
//     queue only (default exchange, routing key "events_<app>"), unrouted
//     events to the exchange with their original routing key. Each copy is
//     mandatory, persistent and confirmed, with the headers of its last life
//     removed (ReplayPublishing: attempt 1 again, no dead-letter headers, no
//     x-death, HeaderReplays raised), so headers do not grow however often an
//     event dies and is replayed. The original is removed only after the
//     broker confirmed the copy and did not return it; a killed replay leaves
//     at most a duplicate, never a loss, and an unrouted event that is still
//     unroutable stays where it was (ErrReturned).
//   - Purge deletes the selected messages, or the whole queue.
//
// Filter selects by type, id and age for Peek, Replay and Purge.
//
// # What reading does to the queue (measured on RabbitMQ 3.10.8)
//
// Quorum queues cannot be browsed: the only way to read a message is to take
// delivery of it. Every operation therefore consumes the queue with manual
// acknowledgements and a prefetch window as large as the queue (at most
// MaxScan), acknowledges only what it removes, and ends by closing its
// channel; it never nacks and never cancels its consumer. What this does, as
// measured on the quorum queues of RabbitMQ 3.10.8 (TestQuorumQueue_ReturnOrder
// pins the facts the package relies on):
//
//   - Nothing is lost, and the order is kept. A channel that closes (or a
//     connection that dies, e.g. a killed "worker dlq") gives back everything it
//     held unacknowledged, in delivery order, also messages still on their way
//     to the client, ahead of every message never delivered (5 to 1,500
//     messages, three rounds each: always in order).
//   - Every message the operation was delivered has its delivery count
//     (x-delivery-count, Message.Deliveries) raised by one and is marked
//     redelivered. Because the window is as large as the queue, that is in
//     practice every message in the queue, also for a Peek limited to one
//     message. The queues eventfleet declares for dead letters and unrouted
//     events have no delivery limit, so the count only informs; Replay strips
//     it. While an operation runs, its messages show as unacknowledged rather
//     than ready.
//   - The queue keeps given-back messages in a list it delivers first, and a
//     closing channel appends to that list. Had an operation read only the
//     front of that list (say "peek --limit 2" after a "list"), the two would
//     have gone behind the rest of it: measured, [m2 … m7 m0 m1]. So before it
//     closes, every operation reads on until it has been delivered the whole
//     list (the first delivery that is not a redelivery ends it). A queue whose
//     list is longer than MaxScan can therefore not be kept in order; the
//     operation says Incomplete.
//   - The consumer and its held messages go back a few milliseconds after the
//     channel closed, together. Operations wait for that (at most 3 s) before
//     they return, and refuse with ErrBusy a queue that still has consumers
//     after 3 s, since reads by two consumers at once would interleave. Quorum
//     queues on 3.10.8 ignore the exclusive flag of basic.consume, so the
//     consumer count is the only guard.
//
// What would have broken order, also measured: basic.nack or basic.reject with
// requeue puts messages at the tail of a quorum queue (single or multiple,
// after basic.consume or basic.get); a basic.cancel before closing sends the
// deliveries still in flight to the tail; basic.get followed by a channel close
// gives messages back scrambled (40 messages: in no recognisable order). A
// basic.qos after basic.consume does not change a quorum consumer's window, and
// prefetch 0 means at most 2,000 unacknowledged deliveries, so the window is
// set once, before consuming, to the queue's depth.
package deadletter
