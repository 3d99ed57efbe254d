package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventfleet/eventfleet/event"
)

// PgxExecer is what Add needs of a pgx transaction (pgx.Tx; a *pgx.Conn or
// *pgxpool.Pool also fit, outside a transaction).
type PgxExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SQLExecer is what AddSQL needs of a database/sql transaction (*sql.Tx).
type SQLExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Add writes ev into the DefaultTable outbox within tx, so the event is
// published if and only if tx commits. An empty ID is filled with a new one
// (in ev's copy only: read it back with the returned ID). The event is
// validated as the Publisher would, so a bad event fails here, in the app's
// transaction, rather than later in the relay.
func Add(ctx context.Context, tx PgxExecer, ev event.Event) (id string, err error) {
	return AddTo(ctx, tx, DefaultTable, ev)
}

// AddTo is Add for an outbox table of another name (eventfleet format).
func AddTo(ctx context.Context, tx PgxExecer, tableName string, ev event.Event) (string, error) {
	q, args, err := insert(tableName, &ev)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return "", fmt.Errorf("outbox: add event %s: %w", ev.ID, err)
	}
	return ev.ID, nil
}

// AddSQL is Add for a database/sql transaction (for example with the pgx
// stdlib driver or lib/pq).
func AddSQL(ctx context.Context, tx SQLExecer, tableName string, ev event.Event) (string, error) {
	q, args, err := insert(tableName, &ev)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return "", fmt.Errorf("outbox: add event %s: %w", ev.ID, err)
	}
	return ev.ID, nil
}

func insert(tableName string, ev *event.Event) (string, []any, error) {
	t, err := parseTable(tableName)
	if err != nil {
		return "", nil, err
	}
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	if err := ev.Validate(); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if len(ev.Data) == 0 {
		// The column holds JSON; an event without a document says so: null.
		return "", nil, fmt.Errorf("%w: data is empty (write null or {} for an event without a document)", ErrInvalidEvent)
	}
	headers := "{}"
	if len(ev.Headers) > 0 {
		b, err := json.Marshal(ev.Headers)
		if err != nil {
			return "", nil, fmt.Errorf("%w: headers: %w", ErrInvalidEvent, err)
		}
		if _, err := parseHeaders(string(b)); err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		headers = string(b)
	}
	q := fmt.Sprintf(`INSERT INTO %s (id, aggregate_id, type, data, headers, source, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))`, t.ident.Sanitize())
	return q, []any{ev.ID, ev.AggregateID, ev.Type, string(ev.Data), headers, ev.Source, timeOrNil(ev.Time)}, nil
}
