package amqp

import "time"

// MillisCutoff is the smallest AMQP timestamp EventTime reads as
// milliseconds. AMQP timestamps are seconds, but amqplib code commonly sends
// Date.now() (milliseconds, about 1.8e12 today). 1e11 seconds is the year
// 5138, which no publisher means; 1e11 milliseconds is March 1973, before any
// eventfleet publisher existed, so the two ranges never meet.
const MillisCutoff = 100_000_000_000

// maxMillis is the first millisecond of the year 10000: JSON and RFC 3339
// cannot show later times.
const maxMillis = 253_402_300_800_000

// EventTime is the time of an event whose delivery carries the AMQP timestamp
// ts (amqp091 reads the property's 64 bits as seconds):
//
//   - 0 ≤ seconds < MillisCutoff: seconds, as published;
//   - MillisCutoff ≤ seconds < year 10000 in milliseconds: milliseconds;
//   - anything else (no timestamp, negative as int64, beyond the year 9999
//     either way): the zero time, "unknown".
//
// The id of a message without a message_id (DerivedID) is computed from the
// raw timestamp, not from this, so it stays what it was before.
func EventTime(ts time.Time) time.Time {
	s := ts.Unix()
	switch {
	case ts.IsZero() || s < 0:
		return time.Time{}
	case s < MillisCutoff:
		return ts
	case s < maxMillis:
		return time.UnixMilli(s)
	default:
		return time.Time{}
	}
}
