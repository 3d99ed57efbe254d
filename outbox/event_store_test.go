package outbox

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// eventStoreSQL is the original design's migration, as compose runs it on
// the database's first boot; deploy/relay_test.go holds that file to the
// migration exactly as issue 16 quotes it.
const eventStoreSQL = "../deploy/postgres/01-event_store.sql"

// eventStoreDB is a fresh database with the original event_store table and
// its side table (relay migrate with that format), and a connection to it.
func eventStoreDB(t *testing.T) (url string, conn *pgx.Conn) {
	t.Helper()
	url, conn = eventStoreTable(t)
	if err := Migrate(context.Background(), conn, "event_store", FormatEventStore); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

// eventStoreTable is a fresh database with the original event_store table
// only (no side table yet), and a connection to it.
func eventStoreTable(t *testing.T) (url string, conn *pgx.Conn) {
	t.Helper()
	url = pgtest.Database(t)
	conn = pgtest.Conn(t, url)
	ddl, err := os.ReadFile(eventStoreSQL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), string(ddl)); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

// An app writing the original event_store table gets its rows published
// through a real broker, unchanged: id → message_id, aggregate_id and
// version → headers, timestamp → AMQP timestamp, event_data → body; rows
// end processed, and old processed rows are pruned.
func TestRelay_EventStoreThroughTheBroker(t *testing.T) {
	url, conn := eventStoreDB(t)
	ctx := context.Background()
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
