package outbox

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// With no row set aside, a scan is a walk of the table's order that stops
// at the batch, whether or not aggregates are held and rows wait for their
// next try: with every exclusion always in the query, PostgreSQL read and
// sorted the whole backlog for each batch (83 ms for a batch of 2,000 over
// 20,000 rows, against 0.8 ms).
func TestScan_WalksTheIndex(t *testing.T) {
	_, conn := migrated(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data)
		SELECT gen_random_uuid()::text, 'agg-' || (i % 1000), 'T', '{}' FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE eventfleet_outbox"); err != nil {
		t.Fatal(err)
	}
	tb, err := parseTable(DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	f := eventfleetFormat{}
	type query struct {
		name string
		sql  string
		args []any
	}
	var qs []query
	for _, filter := range []struct {
		name string
		f    scanFilter
	}{{"nothing to leave out", scanFilter{}},
		{"an aggregate held, a row waiting", scanFilter{held: []string{"agg-x"}, waiting: []string{"7"}}}} {
		first, firstArgs := f.scan(tb, filter.f, 2000)
		ahead, aheadArgs := f.scanAfter(tb, filter.f, 2000, 2000, 20000)
		qs = append(qs, query{filter.name + ": first scan", first, firstArgs}, query{filter.name + ": read-ahead", ahead, aheadArgs})
	}
	for _, q := range qs {
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(lines, "\n"); strings.Contains(p, "Sort") || !strings.Contains(p, "Index Scan using eventfleet_outbox_pkey on eventfleet_outbox o") {
			t.Errorf("%s: want a walk of the primary key, got\n%s", q.name, p)
		}
	}
}
