// Package inbox makes at-least-once delivery effectively once for handlers
// whose effects are in PostgreSQL: a Handler records (app, source, event id)
// in the handler's own transaction and skips an event already recorded, so
// a redelivered event (a lost ack, a retry after a timeout, a duplicate
// publish) changes nothing the second time. The record commits with the
// handler's writes or not at all: a failed handler leaves no record, and the
// event is handled again on its retry.
//
// Records older than the Retention window are removed by Prune; an event
// redelivered after that is handled again.
package inbox
