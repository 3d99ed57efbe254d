package deadletter

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
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

// TestReadMessage_MillisecondTimestamp: an amqplib message without id or
// dead-letter headers shows the right instant, and keeps the id derived from
// its raw timestamp (the worker's id).
func TestReadMessage_MillisecondTimestamp(t *testing.T) {
	t.Parallel()
	instant := time.Date(2026, 12, 1, 20, 30, 15, 123e6, time.UTC)
	raw := time.Unix(instant.UnixMilli(), 0) // what amqp091 reads from Date.now()
	d := amqp091.Delivery{Exchange: "", RoutingKey: "events_billing.dead", Timestamp: raw, AppId: "amqplib",
		Headers: amqp091.Table{HeaderRoutingKey: "OrderPlaced", HeaderExchange: "domain_events"}, Body: []byte(`{}`)}
	m := ReadMessage(&d, false)
	if !m.Time.Equal(instant) {
		t.Errorf("Time %v, want %v", m.Time, instant)
	}
	if want := DerivedID("domain_events", "OrderPlaced", raw, "amqplib", "", d.Body); m.ID != want {
		t.Errorf("ID %s, want %s (derived from the raw timestamp)", m.ID, want)
	}
}
