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
