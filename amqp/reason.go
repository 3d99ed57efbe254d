package amqp

// Reason says why an event was dead-lettered (HeaderReason).
type Reason string

// Reasons a worker dead-letters an event for.
const (
	// ReasonExhausted: the handler failed RETRY_MAX_ATTEMPTS times.
	ReasonExhausted Reason = "exhausted"
	// ReasonPermanent: the handler returned retry.Permanent(err), or no
	// handler exists for the event type.
	ReasonPermanent Reason = "permanent"
	// ReasonUndecodable: the message is not an event eventfleet can read
	// (body not JSON, a content type that is not JSON, a bad type).
	ReasonUndecodable Reason = "undecodable"
	// ReasonOversized: the body was larger than the worker's WORKER_MAX_BODY.
	// The worker rejects such a message without reading its body, and the
	// broker moves it to the dead-letter queue whole, with an x-death
	// record (reason "rejected") and none of eventfleet's headers; so this
	// reason is never written, only read from that record.
	ReasonOversized Reason = "oversized"
)
