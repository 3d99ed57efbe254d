package deadletter

import (
	"slices"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
)

func TestReadMessage(t *testing.T) {
	t.Parallel()
	deadAt := time.Date(2026, 11, 28, 10, 0, 0, 123e6, time.UTC)
	xTime := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	published := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		d        amqp091.Delivery
		unrouted bool
		want     Message // compared: ID (if set), Type, RoutingKey, Exchange, Reason, Attempts, Replays, Time, Deliveries
	}{
		{
			name: "dead-lettered by a worker",
			d: amqp091.Delivery{MessageId: "ev-1", Type: "OrderPlacedEvent", Exchange: "", RoutingKey: "events_billing.dead",
				Timestamp: published, Headers: amqp091.Table{
					amqp.HeaderRoutingKey: "OrderPlacedEvent", amqp.HeaderExchange: "domain_events", amqp.HeaderReason: "exhausted",
					amqp.HeaderDeadAt: deadAt.Format(time.RFC3339Nano), amqp.HeaderAttempt: int32(5), amqp.HeaderReplays: int32(2),
					"x-delivery-count": int64(3),
					// A retry hop's expiry, older than our reason.
					"x-death": []any{amqp091.Table{"reason": "expired", "queue": "events_billing.retry.1s", "time": xTime,
						"exchange": "", "routing-keys": []any{"events_billing.retry.1s"}, "count": int64(4)}},
				}},
			want: Message{ID: "ev-1", Type: "OrderPlacedEvent", RoutingKey: "OrderPlacedEvent", Exchange: "domain_events",
				Reason: amqp.ReasonExhausted, Attempts: 5, Replays: 2, Time: deadAt, Deliveries: 3},
		},
		{
			name: "dead-lettered by the broker's delivery limit, foreign message without id or type",
			d: amqp091.Delivery{Exchange: "", RoutingKey: "events_billing.dead", Timestamp: published, AppId: "legacy",
				Headers: amqp091.Table{"x-death": []any{amqp091.Table{"reason": "delivery_limit", "queue": "events_billing",
					"time": xTime, "exchange": "domain_events", "routing-keys": []any{"CrashEvent"}, "count": int64(1)}}},
				Body: []byte(`{"n":1}`)},
			want: Message{Type: "CrashEvent", RoutingKey: "CrashEvent", Exchange: "domain_events",
				Reason: ReasonDeliveryLimit, Attempts: 1, Time: xTime},
		},
		{
			name: "unrouted",
			d: amqp091.Delivery{MessageId: "ev-2", Type: "NewEvent", RoutingKey: "domain_events.unrouted", Timestamp: published,
				Headers: amqp091.Table{amqp.HeaderRoutingKey: "NewEvent", amqp.HeaderExchange: "domain_events"}},
			unrouted: true,
			want: Message{ID: "ev-2", Type: "NewEvent", RoutingKey: "NewEvent", Exchange: "domain_events",
				Reason: ReasonUnrouted, Attempts: 1, Time: published},
		},
		{
			name: "put in the dead-letter queue by hand",
			d:    amqp091.Delivery{MessageId: "ev-3", RoutingKey: "events_billing.dead"},
			want: Message{ID: "ev-3", Type: "events_billing.dead", Reason: ReasonUnknown, Attempts: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ReadMessage(&tt.d, tt.unrouted)
			if tt.want.ID != "" && got.ID != tt.want.ID {
				t.Errorf("ID = %q, want %q", got.ID, tt.want.ID)
			}
			if got.ID == "" {
				t.Error("ID is empty")
			}
			if got.Type != tt.want.Type || got.RoutingKey != tt.want.RoutingKey || got.Exchange != tt.want.Exchange ||
				got.Reason != tt.want.Reason || got.Attempts != tt.want.Attempts || got.Replays != tt.want.Replays ||
				!got.Time.Equal(tt.want.Time) || got.Deliveries != tt.want.Deliveries {
				t.Errorf("got  %+v\nwant %+v", brief(got), brief(tt.want))
			}
		})
	}
}

func brief(m Message) Message { m.Headers, m.Body = nil, nil; return m }

// TestReadMessage_DerivedIDIsStable: a message without message_id gets the
// same id however often it is read, and a different one for another body.
func TestReadMessage_DerivedIDIsStable(t *testing.T) {
	t.Parallel()
	d := amqp091.Delivery{Exchange: "domain_events", RoutingKey: "CardAddedToLibraryEvent", Timestamp: time.Unix(1700000000, 0),
		AppId: "legacy", Headers: amqp091.Table{"aggregate_id": "lib-1"}, Body: []byte(`{"card":1}`)}
	a, b := ReadMessage(&d, false).ID, ReadMessage(&d, false).ID
	d.Body = []byte(`{"card":2}`)
	c := ReadMessage(&d, false).ID
	if a != b || a == c || len(a) != 36 {
		t.Errorf("ids %q, %q (same message), %q (other body)", a, b, c)
	}
}

func TestReplayPublishing_ResetsOneLife(t *testing.T) {
	t.Parallel()
	d := amqp091.Delivery{MessageId: "ev-1", Type: "OrderPlacedEvent", ContentType: "application/json", UserId: "guest",
		Expiration: "60000", Timestamp: time.Unix(1700000000, 0), AppId: "shop", Body: []byte(`{}`),
		Headers: amqp091.Table{
			amqp.HeaderRoutingKey: "OrderPlacedEvent", amqp.HeaderExchange: "domain_events", amqp.HeaderReason: "exhausted",
			amqp.HeaderDeadAt: "2026-11-28T10:00:00Z", amqp.HeaderAttempt: int32(5), amqp.HeaderReplays: int32(2), amqp.HeaderApp: "billing",
			amqp.HeaderLastError: "boom", amqp.HeaderFirstFailure: "2026-11-28T09:00:00Z", "aggregate_id": "order-1", "tenant": "t1",
			"x-delivery-count": int64(3), "x-death": []any{amqp091.Table{"reason": "expired"}},
			"x-first-death-reason": "expired", "x-last-death-queue": "q",
		}}
	p := ReplayPublishing(&d, ReadMessage(&d, false))
	var keys []string
	for k := range p.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"aggregate_id", amqp.HeaderExchange, amqp.HeaderReplays, amqp.HeaderRoutingKey, "tenant"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("headers %v, want %v", keys, want)
	}
	if p.Headers[amqp.HeaderReplays] != int32(3) {
		t.Errorf("%s = %v, want 3", amqp.HeaderReplays, p.Headers[amqp.HeaderReplays])
	}
	if p.MessageId != "ev-1" || p.Type != "OrderPlacedEvent" || p.AppId != "shop" || p.UserId != "" || p.Expiration != "" ||
		p.DeliveryMode != amqp091.Persistent || string(p.Body) != "{}" || !p.Timestamp.Equal(d.Timestamp) {
		t.Errorf("properties %+v", p)
	}
	// The original delivery is not changed.
	if _, ok := d.Headers[amqp.HeaderReason]; !ok {
		t.Error("ReplayPublishing changed the delivery's headers")
	}
}

func TestFilter_Match(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	m := Message{ID: "ev-1", Type: "OrderPlacedEvent", RoutingKey: "orders.placed", Time: now.Add(-2 * time.Hour)}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Type: "OrderPlacedEvent"}, true},
		{Filter{Type: "orders.placed"}, true},
		{Filter{Type: "Other"}, false},
		{Filter{ID: "ev-1"}, true},
		{Filter{ID: "ev-2"}, false},
		{Filter{OlderThan: time.Hour}, true},
		{Filter{OlderThan: 3 * time.Hour}, false},
		{Filter{Type: "OrderPlacedEvent", OlderThan: 3 * time.Hour}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(m, now); got != tt.want {
			t.Errorf("%+v.Match = %v, want %v", tt.f, got, tt.want)
		}
	}
	if (Filter{OlderThan: time.Second}).Match(Message{}, now) {
		t.Error("a message without a time matched an age filter")
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
		Headers: amqp091.Table{amqp.HeaderRoutingKey: "OrderPlaced", amqp.HeaderExchange: "domain_events"}, Body: []byte(`{}`)}
	m := ReadMessage(&d, false)
	if !m.Time.Equal(instant) {
		t.Errorf("Time %v, want %v", m.Time, instant)
	}
	if want := amqp.DerivedID("domain_events", "OrderPlaced", raw, "amqplib", "", d.Body); m.ID != want {
		t.Errorf("ID %s, want %s (derived from the raw timestamp)", m.ID, want)
	}
}
