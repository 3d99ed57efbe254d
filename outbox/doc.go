// Package outbox moves events from an app's PostgreSQL database to the
// fleet: the app writes each event into an outbox table in the same
// transaction as its data (Add), and a Relay publishes committed rows through
// the confirmed Publisher, settling a row only after its confirm. An event
// whose transaction rolled back was never visible; one that committed is
// delivered at least once, even when the app dies right after its commit.
//
// Two table formats (Format): FormatEventfleet, this package's own table
// (Migrate creates it), whose sent rows are deleted; and FormatEventStore, the
// original design's event_store table, used unchanged, whose rows are settled
// by setting processed = true.
//
// One relay per table publishes at a time: the one holding the table's
// session advisory lock, on the connection it reads and settles with. Others
// stand by and take over when that connection ends. Rows of one aggregate are
// published in order, one confirm apart; rows of different aggregates are
// pipelined. A row that cannot be published is set aside in the table's side
// table with the reason, and its aggregate's later rows wait behind it.
//
// docs/outbox.md has the design and its reasons.
package outbox
