package outbox

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A scan is a walk of the table's order that stops at the batch, and
// reaches the set-aside table by its indexes, on a connection set up as the
// relay's: whether the tables were analyzed or not, rows are set aside,
// aggregates held or rows waiting for their next try, with the values or in
// a generic plan. With every exclusion always in the query, PostgreSQL read
// and sorted the whole backlog for each batch (83 ms for a batch of 2,000
// over 20,000 rows, against 0.8 ms); on a table not analyzed yet it sorted
// the rest of the backlog for every read-ahead (48 ms, against 3.7 ms),
// until the relay's session turned sorts off; with the set-aside check as
// one OR, it compared each row with every set-aside row once the side table
// was analyzed (76 ms, against 6 ms).
func TestScan_WalksTheIndex(t *testing.T) {
	_, conn := migrated(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data)
		SELECT gen_random_uuid()::text, 'agg-' || (i % 1000), 'T', '{}' FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts)
		SELECT (900000 + i)::text, 'parked-' || i, 'test', 1 FROM generate_series(1, 100) i`); err != nil {
		t.Fatal(err)
	}
	f := eventfleetFormat{}
	for _, q := range f.session() {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tb, err := parseTable(DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
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
		{"an aggregate held, a row waiting", scanFilter{held: []string{"agg-x"}, waiting: []string{"7"}}},
		{"rows set aside", scanFilter{setAside: true}},
		{"everything", scanFilter{setAside: true, held: []string{"agg-x"}, waiting: []string{"7"}}}} {
		first, firstArgs := f.scan(tb, filter.f, 2000)
		ahead, aheadArgs := f.scanAfter(tb, filter.f, 2000, 2000, 20000)
		qs = append(qs, query{filter.name + ": first scan", first, firstArgs}, query{filter.name + ": read-ahead", ahead, aheadArgs})
	}
	explain := func(q query) (string, error) {
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			return "", err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		return strings.Join(lines, "\n"), err
	}
	// The relay's statements are prepared (pgx caches them), and PostgreSQL
	// may switch to a plan made without the values after five runs.
	prepared := 0
	explainGeneric := func(q query) (string, error) {
		var types, values []string
		for _, a := range q.args {
			switch a := a.(type) {
			case int:
				types, values = append(types, "int"), append(values, fmt.Sprint(a))
			case int64:
				types, values = append(types, "bigint"), append(values, fmt.Sprint(a))
			case []string:
				types, values = append(types, "text[]"), append(values, "ARRAY['"+strings.Join(a, "','")+"']")
			default:
				return "", fmt.Errorf("argument %T", a)
			}
		}
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
			return "", err
		}
		defer func() { _, _ = conn.Exec(ctx, "RESET plan_cache_mode") }()
		prepared++
		name := fmt.Sprintf("generic%d", prepared)
		if _, err := conn.Exec(ctx, fmt.Sprintf("PREPARE %s(%s) AS %s", name, strings.Join(types, ", "), q.sql)); err != nil {
			return "", err
		}
		return explain(query{sql: fmt.Sprintf("EXECUTE %s(%s)", name, strings.Join(values, ", "))})
	}
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			if _, err := conn.Exec(ctx, "ANALYZE eventfleet_outbox, eventfleet_outbox_set_aside"); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range qs {
			for _, how := range []struct {
				name    string
				explain func(query) (string, error)
			}{{"with its values", explain}, {"generic", explainGeneric}} {
				p, err := how.explain(q)
				if err != nil {
					t.Fatal(err)
				}
				// With 100 side rows, each with an aggregate, PostgreSQL
				// probes the side table's indexes; it reads a side table of
				// ten rows or fewer whole, which would be fine but is not
				// this fixture. A join filter is the one OR form's: every
				// row compared with every set-aside row.
				if strings.Contains(p, "Sort") || strings.Contains(p, "Seq Scan") || strings.Contains(p, "Join Filter") ||
					!strings.Contains(p, "Index Scan using eventfleet_outbox_pkey on eventfleet_outbox o") {
					t.Errorf("%s, plan %s, tables analyzed %v: want a walk of the primary key, the side table by its indexes, got\n%s",
						q.name, how.name, analyzed, p)
				}
			}
		}
	}
}

// The relay's own connection is the one with sorts off: the plans above are
// the relay's only if connect sets the session up.
func TestRelay_SessionTurnsSortsOff(t *testing.T) {
	url, _ := migrated(t)
	r, err := New(Config{DatabaseURL: url, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.connect(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.conn.Close(context.Background()) }()
	var v string
	if err := s.conn.QueryRow(context.Background(), "SHOW enable_sort").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "off" {
		t.Fatalf("enable_sort on the relay's session: %q, want off", v)
	}
}
