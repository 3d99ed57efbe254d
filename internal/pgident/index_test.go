package pgident

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// An index made by an earlier release under PostgreSQL's truncated name is
// renamed, not built a second time; a table whose truncated name was taken
// by another's index gets one of its own; running it again changes nothing.
func TestIndexSQL_RenamesTheTruncatedIndexOfAnEarlierRelease(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.Database(t))
	ctx := context.Background()
	const schema = "library_service_v2"
	a := pgx.Identifier{schema, "inbox_records_kept_for_the_library_handlers_no_a"}
	b := pgx.Identifier{schema, "inbox_records_kept_for_the_library_handlers_no_b"}
	base := func(id pgx.Identifier) string { return id[0] + "_" + id[1] }
	exec := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	for _, id := range []pgx.Identifier{a, b} {
		exec("CREATE TABLE " + id.Sanitize() + " (handled_at timestamptz)")
		// As earlier releases did: PostgreSQL cuts the name to 63 bytes, so
		// b's index was skipped as a duplicate of a's.
		exec("CREATE INDEX IF NOT EXISTS " + pgx.Identifier{base(id) + "_handled_at"}.Sanitize() + " ON " + id.Sanitize() + " (handled_at)")
	}
	indexes := func(id pgx.Identifier) []string {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, id[0], id[1])
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := indexes(b); len(got) != 0 {
		t.Fatalf("setup: b has indexes %v", got)
	}
	for range 2 {
		for _, id := range []pgx.Identifier{a, b} {
			for _, q := range IndexSQL(id, base(id), "_handled_at", "handled_at") {
				exec(q)
			}
		}
		for _, id := range []pgx.Identifier{a, b} {
			if got, want := indexes(id), []string{Name(base(id), "_handled_at")}; !slices.Equal(got, want) {
				t.Errorf("%s: indexes %v, want %v", id.Sanitize(), got, want)
			}
		}
	}
}

// Upgrade, roll back, upgrade: the earlier release builds its truncated index
// again beside the renamed one; the next upgrade drops it instead of failing
// to rename it onto a name that exists. Migrators running at once (replicas
// starting together) do not fail either.
func TestIndexSQL_UpgradeAfterARollbackAndConcurrentMigrators(t *testing.T) {
	url := pgtest.Database(t)
	conn := pgtest.Conn(t, url)
	ctx := context.Background()
	const schema = "library_service_v2"
	id := pgx.Identifier{schema, "inbox_records_kept_for_the_library_handlers_no_a"}
	base := id[0] + "_" + id[1]
	truncated := pgx.Identifier{(base + "_handled_at")[:MaxName]}.Sanitize()
	exec := func(c *pgx.Conn, q string) error {
		_, err := c.Exec(ctx, q)
		return err
	}
	for _, q := range []string{"CREATE SCHEMA " + schema, "CREATE TABLE " + id.Sanitize() + " (handled_at timestamptz)"} {
		if err := exec(conn, q); err != nil {
			t.Fatal(err)
		}
	}
	oldRelease := "CREATE INDEX IF NOT EXISTS " + truncated + " ON " + id.Sanitize() + " (handled_at)"
	upgrade := func(c *pgx.Conn) error {
		for _, q := range IndexSQL(id, base, "_handled_at", "handled_at") {
			if err := exec(c, q); err != nil {
				return err
			}
		}
		return nil
	}
	for step, run := range []func() error{
		func() error { return exec(conn, oldRelease) },
		func() error { return upgrade(conn) },
		func() error { return exec(conn, oldRelease) }, // the rollback
		func() error { return upgrade(conn) },
	} {
		if err := run(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, id[0], id[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d indexes after upgrade, rollback, upgrade; want 1", n)
	}

	// Concurrent first upgrades: both find the truncated index.
	if err := exec(conn, "DROP INDEX "+pgx.Identifier{schema, Name(base, "_handled_at")}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		if err := exec(conn, oldRelease); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			c := pgtest.Conn(t, url)
			go func() { errs <- upgrade(c) }()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a migrator running beside others: %v", round, err)
			}
		}
		if err := exec(conn, "DROP INDEX "+pgx.Identifier{schema, Name(base, "_handled_at")}.Sanitize()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
