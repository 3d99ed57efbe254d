// Package deadletter names the dead-letter side of eventfleet's wire contract:
// the queue names, the reasons an event dies, and the headers that record why.
//
// An event is dead when retrying cannot help or has not helped:
//
//   - ReasonExhausted: the handler failed RETRY_MAX_ATTEMPTS times.
//   - ReasonPermanent: the handler returned retry.Permanent(err), or no handler
//     exists for the event type.
//   - ReasonUndecodable: the message is not an event eventfleet can read (body not
//     JSON, a content type that is not JSON, a bad type).
//   - delivery_limit: the broker itself dead-lettered the message because it was
//     delivered more often than the queue's x-delivery-limit (a worker crashed on
//     it each time). The broker records this in the x-death header, not in ours.
//
// Dead events sit in the app's queue "events_<app>.dead" with the headers below
// until an operator looks at them. The worker publishes them there with a
// publisher confirm before it acks the original, so the hop is at least once.
package deadletter
