package amqp

import (
	"testing"
	"time"
)

func TestEventTime(t *testing.T) {
	t.Parallel()
	instant := time.Date(2026, 12, 1, 20, 30, 15, 123e6, time.UTC)
	tests := []struct {
		name string
		ts   time.Time
		want time.Time
	}{
		{"no timestamp", time.Time{}, time.Time{}},
		{"seconds, as eventfleet publishes", time.Unix(instant.Unix(), 0), time.Unix(instant.Unix(), 0)},
		{"epoch", time.Unix(0, 0), time.Unix(0, 0)},
		{"last second read as seconds", time.Unix(MillisCutoff-1, 0), time.Unix(MillisCutoff-1, 0)},
		{"amqplib Date.now(): milliseconds", time.Unix(instant.UnixMilli(), 0), instant},
		{"first value read as milliseconds", time.Unix(MillisCutoff, 0), time.UnixMilli(MillisCutoff)},
		{"last millisecond of 9999", time.Unix(maxMillis-1, 0), time.UnixMilli(maxMillis - 1)},
		{"year 10000 in milliseconds", time.Unix(maxMillis, 0), time.Time{}},
		{"microseconds", time.Unix(instant.UnixMicro(), 0), time.Time{}},
		{"uint64 above int64: negative", time.Unix(-1, 0), time.Time{}},
		{"most negative", time.Unix(-1<<63, 0), time.Time{}},
		{"most positive", time.Unix(1<<63-1, 0), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := EventTime(tt.ts)
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Fatalf("EventTime(Unix %d) = %v, want %v", tt.ts.Unix(), got, tt.want)
			}
			if _, err := got.MarshalJSON(); err != nil {
				t.Fatalf("EventTime(Unix %d) = %v cannot be shown: %v", tt.ts.Unix(), got, err)
			}
		})
	}
}
