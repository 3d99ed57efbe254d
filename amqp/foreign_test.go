package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestDecode_MillisecondTimestamp: amqplib's Date.now() timestamp is read as
// milliseconds, and the id of an id-less message stays derived from the raw
// value, the same on the retry hop's redelivery.
func TestDecode_MillisecondTimestamp(t *testing.T) {
	t.Parallel()
	instant := time.Date(2026, 12, 1, 20, 30, 15, 123e6, time.UTC)
	raw := time.Unix(instant.UnixMilli(), 0)
	d := &amqp091.Delivery{Exchange: "domain_events", RoutingKey: "OrderPlaced", Timestamp: raw, AppId: "amqplib",
		Headers: amqp091.Table{}, Body: []byte(`{"n":1}`)}
	ev, err := decode(d, 0)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !ev.Time.Equal(instant) {
		t.Errorf("Time %v, want %v", ev.Time, instant)
	}
	want := DerivedID("domain_events", "OrderPlaced", raw, "amqplib", "", d.Body)
	if ev.ID != want {
		t.Errorf("ID %s, want %s (derived from the raw timestamp)", ev.ID, want)
	}
	// The retry hop keeps the raw timestamp: the redelivery has the same id.
	hop := republishing(d, ev.ID, func(amqp091.Table) {})
	if !hop.Timestamp.Equal(raw) {
		t.Errorf("hop timestamp %v, want the raw %v", hop.Timestamp, raw)
	}
	back := &amqp091.Delivery{Headers: hop.Headers, Timestamp: hop.Timestamp, AppId: hop.AppId, RoutingKey: "events_a", Body: hop.Body}
	back.MessageId = "" // as if the hop had not set it: the id must still match
	if again, _ := decode(back, 0); again.ID != want || !again.Time.Equal(instant) {
		t.Errorf("redelivery: id %s time %v, want %s %v", again.ID, again.Time, want, instant)
	}
}
