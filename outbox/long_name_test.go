package outbox

import (
	"context"
	"testing"
)

// OUTBOX_TABLE accepts schema.table with parts of up to 50 bytes each, and the
// NOTIFY channel is that whole name; PostgreSQL refuses a channel of 64 bytes
// or more ("channel name too long"), so with such a name the trigger makes
// every insert fail: the app's transaction aborts and no event is written.
func TestAdd_SchemaQualifiedNameLongerThanAChannel(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	const name = "orders_service_schema_v2.orders_service_eventfleet_outbox_table_v2" // 66 bytes
	if _, err := conn.Exec(ctx, "CREATE SCHEMA orders_service_schema_v2"); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conn, name, FormatEventfleet); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	startRelay(t, Config{DatabaseURL: url, Table: name}, pub)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	id, err := AddTo(ctx, tx, name, ev("OrderPlaced", "o-1", `{}`))
	if err != nil {
		t.Fatalf("AddTo %s: %v", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the row published", func() bool { return sameIDs(pub.ids(), []string{id}) })
}
