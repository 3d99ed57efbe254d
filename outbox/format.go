package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/eventfleet/eventfleet/event"
)

// Format is the outbox table's layout.
type Format string

const (
	// FormatEventfleet is this package's table (Migrate creates it): a
	// sequence, the event's fields and headers. Sent rows are deleted.
	FormatEventfleet Format = "eventfleet"
	// FormatEventStore is the original design's event_store table, unchanged.
	// Sent rows get processed = true and are pruned after Retention.
	FormatEventStore Format = "event_store"
)

// HeaderAggregateVersion carries event_store's version column (the
// aggregate's version the event produced). Part of the wire contract.
const HeaderAggregateVersion = "aggregate_version"

func (f Format) impl() (format, error) {
	switch f {
	case FormatEventfleet, "":
		return eventfleetFormat{}, nil
	case FormatEventStore:
		return eventStoreFormat{}, nil
	}
	return nil, fmt.Errorf("%w: format %q: want %q or %q", ErrInvalidConfig, string(f), FormatEventfleet, FormatEventStore)
}

// format is what differs between the table layouts.
type format interface {
	migrate(t table) []string
	// scan selects up to limit unsettled rows that f lets through, in
	// publishing order, as scanned by read (event_store: and the earlier
	// versions of their aggregates, which may make more than limit).
	scan(t table, f scanFilter, limit int) (string, []any)
	// scanAfter is scan for rows after the seq after, up to the seq
	// ceiling (the pass's) only: the next batch while the current one is
	// being published. Only for a format that readsAhead.
	scanAfter(t table, f scanFilter, limit int, after, ceiling int64) (string, []any)
	// readsAhead: the format has a sequence, so the next batch is read
	// while the current one is published (event_store: its batches are
	// read one after the other).
	readsAhead() bool
	// ceiling selects the highest seq of the table (0 when empty), read
	// before a pass's first scan (see passStartSQL); "0" without a
	// sequence.
	ceiling(t table) string
	read(rows pgx.Rows) (row, error)
	// session is what the relay's connection runs once, before its first
	// scan.
	session() []string
	// settle marks the rows whose keys are $1 (text[]) sent.
	settle(t table) string
	// backlog selects the unsettled rows (at most 100,000 counted), the
	// oldest one's age in seconds (0 when none) and the set-aside rows.
	backlog(t table) string
	// prune deletes up to $1 settled rows older than $2 (an interval in
	// seconds); "" when sent rows are deleted at once.
	prune(t table) string
}

// row is one outbox row as the relay handles it.
type row struct {
	key string // the row's key as text: seq, or event_store's id
	seq int64  // the eventfleet format's seq (0 for event_store)
	ev  event.Event
	// bad: the row can never be published (set aside at once).
	bad error
}

// scanFilter is what a scan leaves out: rows that cannot be published
// now, so that they do not fill a batch, which would keep other aggregates
// waiting (event_store reads one batch a pass).
type scanFilter struct {
	// setAside: the set-aside table had rows when the pass began. Leave out
	// the set-aside rows, and the rows of an aggregate with one.
	setAside bool
	held     []string // aggregates left out
	waiting  []string // row keys left out: rows waiting for their next try
}

// where is f as an SQL condition on the row whose key (as text) and
// aggregate are the expressions key and aggregate, with its parameters
// appended to args. It names only the exclusions that apply: with none it
// is "true", and the scan a walk of the table's order that stops at the
// batch. With every exclusion always in place, PostgreSQL's planner,
// estimating that each leaves out a good share of the rows, sorted the
// whole backlog for every batch.
//
// The set-aside table is checked with NOT EXISTS, by its indexes: a NOT IN
// over it is hashed only while it fits in hash_mem, and is checked row by
// row beyond that. One NOT EXISTS for the row and one for its aggregate,
// each on one index: with the two in one OR, PostgreSQL compared every row
// with every set-aside row once the side table was analyzed. The lists are
// checked with NOT IN a subquery rather than <> ALL: PostgreSQL hashes the
// subquery's list, also in the generic plan of a prepared statement, where
// <> ALL walks the array for every row. docs/outbox.md has the plans and
// their times.
func (f scanFilter) where(t table, key, aggregate string, args []any) (string, []any) {
	var conds []string
	if f.setAside {
		conds = append(conds,
			fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM %s s WHERE s.row_key = %s)`, t.setAside.Sanitize(), key),
			fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM %s s WHERE s.aggregate_id = %s AND s.aggregate_id <> '')`, t.setAside.Sanitize(), aggregate))
	}
	for _, l := range []struct {
		expr string
		list []string
	}{{aggregate, f.held}, {key, f.waiting}} {
		if len(l.list) > 0 {
			args = append(args, l.list)
			conds = append(conds, fmt.Sprintf(`%s NOT IN (SELECT unnest($%d::text[]))`, l.expr, len(args)))
		}
	}
	if len(conds) == 0 {
		return "true", args
	}
	return strings.Join(conds, "\n\tAND "), args
}

// passStartSQL selects, in one snapshot, the pass's ceiling (ceiling, a
// format's query), the aggregates held back by a set-aside row (the
// read-ahead leaves those out for the whole pass, see Relay.pass; an empty
// list for a format that does not read ahead: the list can be long) and
// whether any row is set aside.
func passStartSQL(t table, ceiling string, readsAhead bool) string {
	held := "'{}'::text[]"
	if readsAhead {
		held = fmt.Sprintf(`ARRAY(SELECT DISTINCT aggregate_id FROM %s WHERE aggregate_id <> '')`, t.setAside.Sanitize())
	}
	return fmt.Sprintf(`SELECT (%s), %s, EXISTS (SELECT 1 FROM %s)`, ceiling, held, t.setAside.Sanitize())
}

type eventfleetFormat struct{}

func (eventfleetFormat) migrate(t table) []string {
	return append([]string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id text NOT NULL,
	aggregate_id text NOT NULL DEFAULT '',
	type text NOT NULL,
	data json NOT NULL,
	headers jsonb NOT NULL DEFAULT '{}',
	source text NOT NULL DEFAULT '',
	occurred_at timestamptz NOT NULL DEFAULT now()
)`, t.ident.Sanitize())}, notifySQL(t)...)
}

func (eventfleetFormat) scan(t table, f scanFilter, limit int) (string, []any) {
	where, args := f.where(t, "o.seq::text", "o.aggregate_id", []any{limit})
	return fmt.Sprintf(`SELECT o.seq::text, o.id, o.aggregate_id, o.type, o.data::text, o.headers::text, o.source, o.occurred_at
FROM %s o WHERE %s ORDER BY o.seq LIMIT $1`, t.ident.Sanitize(), where), args
}

func (eventfleetFormat) scanAfter(t table, f scanFilter, limit int, after, ceiling int64) (string, []any) {
	where, args := f.where(t, "o.seq::text", "o.aggregate_id", []any{limit, after, ceiling})
	return fmt.Sprintf(`SELECT o.seq::text, o.id, o.aggregate_id, o.type, o.data::text, o.headers::text, o.source, o.occurred_at
FROM %s o WHERE o.seq > $2 AND o.seq <= $3 AND %s ORDER BY o.seq LIMIT $1`, t.ident.Sanitize(), where), args
}

func (eventfleetFormat) readsAhead() bool { return true }

func (eventfleetFormat) ceiling(t table) string {
	return fmt.Sprintf(`SELECT coalesce(max(seq), 0) FROM %s`, t.ident.Sanitize())
}

func (eventfleetFormat) read(rows pgx.Rows) (row, error) {
	var r row
	var data, headers string
	var at pgtype.Timestamptz
	if err := rows.Scan(&r.key, &r.ev.ID, &r.ev.AggregateID, &r.ev.Type, &data, &headers, &r.ev.Source, &at); err != nil {
		return r, err
	}
	r.seq, _ = strconv.ParseInt(r.key, 10, 64)
	r.ev.Data = json.RawMessage(data)
	r.ev.Headers, r.bad = parseHeaders(headers)
	r.ev.Time, r.bad = finiteTime(at, "occurred_at", r.bad)
	return r, nil
}

// session turns the planner's sorts off for the relay's connection: a
// scan (ORDER BY seq LIMIT) is best a walk of the primary key that stops at
// the batch, and a sort reads every row the conditions let through first.
// On a table not analyzed yet (a backlog filled after migrate) PostgreSQL
// estimates a read-ahead's seq range at a few hundred rows and sorts the
// whole rest of the backlog for every batch: 48 ms for a batch of 2,000
// with 18,000 rows left, against 3.7 ms for the walk (docs/outbox.md). No
// statement of the relay's needs a sort.
func (eventfleetFormat) session() []string { return []string{"SET enable_sort = off"} }

func (eventfleetFormat) settle(t table) string {
	return fmt.Sprintf(`DELETE FROM %s WHERE seq = ANY($1::text[]::bigint[])`, t.ident.Sanitize())
}

func (eventfleetFormat) prune(table) string { return "" }

func (eventfleetFormat) backlog(t table) string {
	return fmt.Sprintf(`SELECT (SELECT count(*) FROM (SELECT 1 FROM %[1]s LIMIT 100000) p)::int,
	coalesce(extract(epoch FROM now() - (SELECT occurred_at FROM %[1]s ORDER BY seq LIMIT 1)), 0)::float8,
	(SELECT count(*) FROM %[2]s)::int`, t.ident.Sanitize(), t.setAside.Sanitize())
}

type eventStoreFormat struct{}

func (eventStoreFormat) migrate(table) []string { return nil }

func (eventStoreFormat) scanAfter(table, scanFilter, int, int64, int64) (string, []any) {
	panic("outbox: event_store has no sequence to read ahead by")
}

func (eventStoreFormat) readsAhead() bool { return false }

func (eventStoreFormat) ceiling(table) string { return "0" }

func (eventStoreFormat) scan(t table, f scanFilter, limit int) (string, []any) {
	// Rows go by timestamp (the partial index idx_event_store_unprocessed
	// serves the first, batch-sized scan), but within an aggregate version
	// decides, even when the app's clocks put a later version earlier. So
	// the batch takes along every unsettled lower version of its aggregates
	// (by idx_event_store_aggregate), and is ordered by when a row is due:
	// the latest timestamp of its aggregate's rows up to its version, which
	// never decreases with the version. Waves then follow version order.
	// LATERAL keeps the lookup of lower versions on the aggregate index (a
	// join was planned as a scan of the whole table): measured 0.08 s for a
	// batch of 500 over 100,000 unsettled and 100,000 processed rows, the
	// timestamp-only scan 0.005 s.
	where, args := f.where(t, "o.id::text", "o.aggregate_id", []any{limit})
	return fmt.Sprintf(`WITH b AS (
	SELECT o.id, o.aggregate_id, o.event_type, o.event_data, o.version, o."timestamp" FROM %[1]s o
	WHERE o.processed = false AND %[2]s ORDER BY o."timestamp", o.aggregate_id, o.version LIMIT $1
), lower AS (
	SELECT o.* FROM (SELECT aggregate_id, max(version) AS v FROM b WHERE aggregate_id <> '' GROUP BY aggregate_id) m
	CROSS JOIN LATERAL (SELECT o.id, o.aggregate_id, o.event_type, o.event_data, o.version, o."timestamp" FROM %[1]s o
		WHERE o.aggregate_id = m.aggregate_id AND o.version < m.v AND o.processed = false AND %[2]s) o
	WHERE o.id NOT IN (SELECT id FROM b)
), u AS (
	SELECT *, CASE WHEN aggregate_id = '' THEN "timestamp"
		ELSE max("timestamp") OVER (PARTITION BY aggregate_id ORDER BY version, "timestamp" ROWS UNBOUNDED PRECEDING) END AS due
	FROM (SELECT * FROM b UNION ALL SELECT * FROM lower) a
)
SELECT id::text, aggregate_id, event_type, event_data::text, version, "timestamp" FROM u
ORDER BY due, aggregate_id, version, "timestamp"`,
		t.ident.Sanitize(), where), args
}

func (eventStoreFormat) read(rows pgx.Rows) (row, error) {
	var r row
	var data string
	var version int32
	var at pgtype.Timestamptz
	if err := rows.Scan(&r.key, &r.ev.AggregateID, &r.ev.Type, &data, &version, &at); err != nil {
		return r, err
	}
	r.ev.Time, r.bad = finiteTime(at, "timestamp", nil)
	r.ev.ID = r.key
	r.ev.Data = json.RawMessage(data)
	r.ev.Headers = map[string]any{HeaderAggregateVersion: int64(version)}
	return r, nil
}

// session: event_store's scan orders by more than an index does.
func (eventStoreFormat) session() []string { return nil }

func (eventStoreFormat) settle(t table) string {
	return fmt.Sprintf(`UPDATE %s SET processed = true WHERE id = ANY($1::text[]::uuid[])`, t.ident.Sanitize())
}

func (eventStoreFormat) backlog(t table) string {
	return fmt.Sprintf(`SELECT (SELECT count(*) FROM (SELECT 1 FROM %[1]s WHERE processed = false LIMIT 100000) p)::int,
	coalesce(extract(epoch FROM now() - (SELECT min("timestamp") FROM %[1]s WHERE processed = false)), 0)::float8,
	(SELECT count(*) FROM %[2]s)::int`, t.ident.Sanitize(), t.setAside.Sanitize())
}

func (eventStoreFormat) prune(t table) string {
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM %[1]s WHERE processed AND created_at < now() - make_interval(secs => $2) LIMIT $1))`, t.ident.Sanitize())
}

// parseHeaders reads the headers column: a JSON object whose values are
// strings, numbers (integers stay integers) or booleans, which is what an
// AMQP header table can carry without nesting.
func parseHeaders(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("headers are not a JSON object: %w", err)
	}
	h := make(map[string]any, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string, bool:
			h[k] = v
		case json.Number:
			if i, err := v.Int64(); err == nil {
				h[k] = i
			} else if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
				h[k] = f
			} else {
				return nil, fmt.Errorf("header %q: number %s out of range", k, v)
			}
		default:
			return nil, fmt.Errorf("header %q: %T values cannot be AMQP headers here (strings, numbers, booleans)", k, v)
		}
	}
	return h, nil
}

// finiteTime is at as a time.Time. PostgreSQL stores 'infinity', which a
// time.Time cannot hold: scanning it straight into one failed the whole
// scan, so one such row stopped the table; it is a bad row instead (set
// aside with the reason), unless the row is bad already.
func finiteTime(at pgtype.Timestamptz, column string, bad error) (time.Time, error) {
	if at.Valid && at.InfinityModifier == pgtype.Finite {
		return at.Time, bad
	}
	if bad == nil {
		bad = fmt.Errorf("%s is not a finite time", column)
	}
	return time.Time{}, bad
}

// timeOrNil is t, or nil for the zero time: Add leaves occurred_at to the
// database's now() then.
func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
