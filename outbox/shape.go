package outbox

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Columns each format reads or writes; a table without one of them makes
// every scan fail, so the relay checks before it takes the table's lock and
// names what is missing (a table of the other format: OUTBOX_FORMAT).
var (
	eventfleetColumns = []string{"seq", "id", "aggregate_id", "type", "data", "headers", "source", "occurred_at"}
	eventStoreColumns = []string{"id", "aggregate_id", "event_type", "event_data", "version", "timestamp", "processed"}
	// eventStorePruned: pruning also needs created_at.
	eventStorePruned = "created_at"
	setAsideColumns  = []string{"row_key", "aggregate_id", "reason", "attempts", "first_failed_at", "last_failed_at"}
)

// columnsOf lists the columns of the table whose oid is oid; nil when it
// does not exist.
func columnsOf(ctx context.Context, conn *pgx.Conn, oid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// oidOf is the oid of the table ident (maybe schema-qualified) as the
// connection's search_path resolves it; ok is false when there is none.
// name is the table as the operator wrote it, for the error.
func oidOf(ctx context.Context, conn *pgx.Conn, ident pgx.Identifier, name string) (oid uint32, ok bool, err error) {
	var found *uint32
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1)::oid", ident.Sanitize()).Scan(&found); err != nil {
		return 0, false, fmt.Errorf("outbox: look up table %s: %w", name, err)
	}
	if found == nil {
		return 0, false, nil
	}
	return *found, true, nil
}

// missing is the columns of want that have lacks.
func missing(want, have []string) []string {
	var out []string
	for _, c := range want {
		if !slices.Contains(have, c) {
			out = append(out, c)
		}
	}
	return out
}

// checkShape reports, as ErrTableShape, an outbox table whose columns do
// not suit the configured format, and, as ErrTableMissing or
// ErrTableShape, a side table that is not there or not one.
func (r *Relay) checkShape(ctx context.Context, conn *pgx.Conn, oid uint32) error {
	have, err := columnsOf(ctx, conn, oid)
	if err != nil {
		return fmt.Errorf("outbox: read the columns of %s: %w", r.t.name, err)
	}
	want, other, otherFormat := eventfleetColumns, eventStoreColumns, FormatEventStore
	if r.cfg.Format == FormatEventStore {
		want, other, otherFormat = eventStoreColumns, eventfleetColumns, FormatEventfleet
		if !r.cfg.KeepProcessed {
			want = append(slices.Clone(want), eventStorePruned)
		}
	}
	if lack := missing(want, have); len(lack) > 0 {
		hint := "check OUTBOX_TABLE"
		if len(missing(other, have)) == 0 {
			hint = fmt.Sprintf("it is a table of the %s format: set OUTBOX_FORMAT=%s", otherFormat, otherFormat)
		} else if r.cfg.Format == FormatEventStore && len(lack) == 1 && lack[0] == eventStorePruned {
			hint = "add it (timestamptz DEFAULT now()) or set OUTBOX_RETENTION=0 to keep processed rows"
		}
		return fmt.Errorf("%w: table %s has no column %s, which OUTBOX_FORMAT=%s needs: %s",
			ErrTableShape, r.t.name, strings.Join(lack, ", "), r.cfg.Format, hint)
	}
	side := r.t.setAside.Sanitize()
	sideOID, ok, err := oidOf(ctx, conn, r.t.setAside, side)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the side table %s for set-aside rows does not exist: run `publisher relay migrate` with OUTBOX_FORMAT=%s (for event_store it creates only the side table)",
			ErrTableMissing, side, r.cfg.Format)
	}
	if have, err = columnsOf(ctx, conn, sideOID); err != nil {
		return fmt.Errorf("outbox: read the columns of %s: %w", side, err)
	}
	if lack := missing(setAsideColumns, have); len(lack) > 0 {
		return fmt.Errorf("%w: the side table %s has no column %s: it is not one `publisher relay migrate` made (rename it, then migrate)",
			ErrTableShape, side, strings.Join(lack, ", "))
	}
	return nil
}
