package outbox

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// PostgreSQL truncates an identifier to 63 bytes, with only a NOTICE. The
// side table's index was "<table>_set_aside_aggregate", 70 bytes for a
// 50-byte table: cut to "..._set_aside_ag". Every derived name (side table,
// index, trigger, function) must be whole, for the longest names accepted.
func TestMigrate_LongestTableNamesAreNotTruncated(t *testing.T) {
	url, _ := migrated(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message)
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const part = "orders_service_eventfleet_outbox_table_region_no_1" // 50 bytes, the most accepted
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+part); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{part, part + "." + part} {
		if err := Migrate(ctx, conn, name, FormatEventfleet); err != nil {
			t.Fatal(err)
		}
		if n := count(t, conn, `SELECT count(*)::int FROM pg_indexes WHERE schemaname || '.' || tablename = $1
			AND indexdef LIKE '%(aggregate_id)'`, qualified(name)+"_set_aside"); n != 1 {
			t.Errorf("%s_set_aside: %d indexes on aggregate_id, want 1", name, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range notices {
		if strings.Contains(n, "truncated") {
			t.Errorf("migrate: %s", n)
		}
	}
}

func qualified(name string) string {
	if strings.Contains(name, ".") {
		return name
	}
	return "public." + name
}
