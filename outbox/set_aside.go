package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SetAsideRow is a row the relay set aside, as an operator sees it.
type SetAsideRow struct {
	Key         string    `json:"row"` // seq, or event_store's id
	AggregateID string    `json:"aggregate_id"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	FirstFailed time.Time `json:"first_failed_at"`
	LastFailed  time.Time `json:"last_failed_at"`
}

// ListSetAside returns the table's set-aside rows, oldest first.
func ListSetAside(ctx context.Context, conn *pgx.Conn, tableName string) ([]SetAsideRow, error) {
	t, err := parseTable(tableName)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT row_key, aggregate_id, reason, attempts, first_failed_at, last_failed_at
FROM %s ORDER BY first_failed_at, row_key`, t.setAside.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("outbox: list set-aside rows: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SetAsideRow, error) {
		var s SetAsideRow
		err := r.Scan(&s.Key, &s.AggregateID, &s.Reason, &s.Attempts, &s.FirstFailed, &s.LastFailed)
		return s, err
	})
}

// RetrySetAside lets the relay try the set-aside rows keys (all when keys is
// empty) again, with their aggregates' later rows after them. It returns how
// many it released.
func RetrySetAside(ctx context.Context, conn *pgx.Conn, tableName string, keys []string) (int64, error) {
	t, err := parseTable(tableName)
	if err != nil {
		return 0, err
	}
	tag, err := conn.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE $1::text[] IS NULL OR row_key = ANY($1)`, t.setAside.Sanitize()), nilIfEmpty(keys))
	if err != nil {
		return 0, fmt.Errorf("outbox: release set-aside rows: %w", err)
	}
	return tag.RowsAffected(), nil
}

// DiscardSetAside settles the set-aside rows keys (all when keys is empty)
// without publishing them — deleted, or processed = true for event_store —
// and releases their aggregates, in one transaction. It returns how many it
// discarded.
func DiscardSetAside(ctx context.Context, conn *pgx.Conn, tableName string, format Format, keys []string) (int64, error) {
	t, err := parseTable(tableName)
	if err != nil {
		return 0, err
	}
	f, err := format.impl()
	if err != nil {
		return 0, err
	}
	var n int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, fmt.Sprintf(`DELETE FROM %s WHERE $1::text[] IS NULL OR row_key = ANY($1) RETURNING row_key`,
			t.setAside.Sanitize()), nilIfEmpty(keys))
		if err != nil {
			return err
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(gone) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, f.settle(t), gone); err != nil {
			return err
		}
		n = int64(len(gone))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: discard set-aside rows: %w", err)
	}
	return n, nil
}

func nilIfEmpty(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	return keys
}
