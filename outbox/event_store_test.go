package outbox

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// The original design's migration, exactly as the issue quotes it.
const eventStoreDDL = `
CREATE TABLE event_store (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregate_id VARCHAR(255) NOT NULL,
  event_type VARCHAR(255) NOT NULL,
  event_data JSONB NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  processed BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_event_store_unprocessed ON event_store (processed, timestamp) WHERE processed = FALSE;
CREATE INDEX idx_event_store_aggregate ON event_store (aggregate_id, version);`

// An app writing the original event_store table gets its rows published
// through a real broker, unchanged: id → message_id, aggregate_id and
// version → headers, timestamp → AMQP timestamp, event_data → body; rows
// end processed, and old processed rows are pruned.
func TestRelay_EventStoreThroughTheBroker(t *testing.T) {
	url := pgtest.Database(t)
	conn := pgtest.Conn(t, url)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, eventStoreDDL); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conn, "event_store", FormatEventStore); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	if _, err := conn.Exec(ctx, `INSERT INTO event_store (id, aggregate_id, event_type, event_data, version, timestamp) VALUES
		('0193a5d0-0000-7000-8000-0000000000a1', 'lib-1', 'CardAddedToLibraryEvent', '{"cardId":"c-1"}', 1, $1),
		('0193a5d0-0000-7000-8000-0000000000a2', 'lib-1', 'CardAddedToLibraryEvent', '{"cardId":"c-2"}', 2, $1)`, at); err != nil {
		t.Fatal(err)
	}
	// An old processed row, to be pruned.
	if _, err := conn.Exec(ctx, `INSERT INTO event_store (aggregate_id, event_type, event_data, timestamp, processed, created_at)
		VALUES ('old', 'Old', '{}', now(), true, now() - interval '30 days')`); err != nil {
		t.Fatal(err)
	}

	exchange := brokertest.Name(t)
	queue := exchange + "-q"
	brokertest.Cleanup(t, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	ch := brokertest.Channel(t)
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "CardAddedToLibraryEvent", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(t), Exchange: exchange, AppID: "library", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })

	startRelay(t, Config{DatabaseURL: url, Format: FormatEventStore}, pub)
	ds, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		id, body string
		version  int64
	}{{"0193a5d0-0000-7000-8000-0000000000a1", `{"cardId": "c-1"}`, 1}, {"0193a5d0-0000-7000-8000-0000000000a2", `{"cardId": "c-2"}`, 2}} {
		var d amqp091.Delivery
		select {
		case d = <-ds:
		case <-time.After(20 * time.Second):
			t.Fatalf("message %d not delivered", i+1)
		}
		if d.MessageId != want.id || d.Type != "CardAddedToLibraryEvent" || d.RoutingKey != "CardAddedToLibraryEvent" ||
			d.Headers[amqp.HeaderAggregateID] != "lib-1" || !d.Timestamp.Equal(at) || string(d.Body) != want.body {
			t.Fatalf("message %d: id %q type %q key %q headers %v time %v body %s", i+1, d.MessageId, d.Type, d.RoutingKey,
				d.Headers, d.Timestamp, d.Body)
		}
		if v, _ := d.Headers[HeaderAggregateVersion].(int64); v != want.version {
			t.Fatalf("message %d: %s = %#v, want %d", i+1, HeaderAggregateVersion, d.Headers[HeaderAggregateVersion], want.version)
		}
	}
	eventually(t, "rows processed", func() bool {
		return count(t, conn, "SELECT count(*) FROM event_store WHERE NOT processed") == 0
	})
	eventually(t, "the old processed row pruned", func() bool {
		return count(t, conn, "SELECT count(*) FROM event_store WHERE aggregate_id = 'old'") == 0
	})
	if n := count(t, conn, "SELECT count(*) FROM event_store"); n != 2 {
		t.Fatalf("%d rows left, want the 2 recent processed ones", n)
	}
}
