package outbox

import "errors"

// Errors of this package. Test with errors.Is.
var (
	// ErrInvalidConfig: a Config field or table name is refused.
	ErrInvalidConfig = errors.New("outbox: invalid configuration")
	// ErrInvalidEvent: Add refused an event (the event package's error is
	// wrapped too).
	ErrInvalidEvent = errors.New("outbox: invalid event")
	// ErrTableMissing: the outbox table does not exist in the database.
	ErrTableMissing = errors.New("outbox: table missing")
	// ErrTableShape: the outbox table lacks a column its format needs, or
	// the side table one of its own.
	ErrTableShape = errors.New("outbox: table of the wrong shape")
	// errNotLeader: another relay holds the table; a standby keeps trying.
	errNotLeader = errors.New("outbox: another relay is publishing this table")
)
