package inbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/pgident"
)

// DefaultTable is the inbox table's default name.
const DefaultTable = "eventfleet_inbox"

// DefaultRetention is how long records are kept by default: far longer than
// any retry schedule or redelivery.
const DefaultRetention = 30 * 24 * time.Hour

// ErrInvalidConfig: a Config is refused.
var ErrInvalidConfig = errors.New("inbox: invalid configuration")

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Execer runs a statement: a *pgxpool.Pool, *pgx.Conn or pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Func handles an event inside tx; its writes commit with the inbox record.
// It must not commit or roll back tx itself.
type Func func(ctx context.Context, tx pgx.Tx, ev event.Event) error

// Config configures a Handler.
type Config struct {
	// DB starts the handler's transactions. Required.
	DB Beginner
	// App is the consuming app: records are per app, so that apps sharing a
	// database each handle every event. Required.
	App string
	// Table is the inbox table, "name" or "schema.name". Defaults to
	// DefaultTable.
	Table string
	// Retention is how long Prune keeps records. Defaults to
	// DefaultRetention (30 days).
	Retention time.Duration
}

// Handler is an event.Handler that runs a Func at most once per event for
// its app, as far as the database can tell.
type Handler struct {
	cfg    Config
	table  string // sanitized
	fn     Func
	insert string
}

var _ event.Handler = (*Handler)(nil)

// New checks cfg and returns a Handler running fn.
func New(cfg Config, fn Func) (*Handler, error) {
	switch {
	case cfg.DB == nil:
		return nil, fmt.Errorf("%w: DB is required", ErrInvalidConfig)
	case cfg.App == "":
		return nil, fmt.Errorf("%w: App is required", ErrInvalidConfig)
	case fn == nil:
		return nil, fmt.Errorf("%w: nil handler func", ErrInvalidConfig)
	case cfg.Retention < 0:
		return nil, fmt.Errorf("%w: Retention %v must not be negative", ErrInvalidConfig, cfg.Retention)
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	table, err := sanitize(cfg.Table)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, table: table, fn: fn,
		insert: fmt.Sprintf(`INSERT INTO %s (app, source, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, table)}, nil
}

func sanitize(name string) (string, error) {
	ident, err := pgident.ParseTable(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ident.Sanitize(), nil
}

// Migrate creates the inbox table if it is not there.
func Migrate(ctx context.Context, db Execer, table string) error {
	if table == "" {
		table = DefaultTable
	}
	ident, err := pgident.ParseTable(table)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	t := ident.Sanitize()
	for _, q := range append([]string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	app text NOT NULL,
	source text NOT NULL,
	event_id text NOT NULL,
	handled_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (app, source, event_id)
)`, t),
		// The index is named after schema and table, as it always was.
	}, pgident.IndexSQL(ident, strings.ReplaceAll(table, ".", "_"), "_handled_at", "handled_at")...) {
		if _, err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("inbox: migrate %s: %w", table, err)
		}
	}
	return nil
}

// Handle records ev and runs the Func in one transaction; an event already
// recorded for this app is skipped (nil, nothing run). A second delivery of
// an event whose first is still running waits for it (the record's key is
// locked until that transaction ends), then skips or, if the first failed,
// runs. The Func's error is returned as it is, so retry.Permanent keeps its
// meaning; a failed commit is returned too, and the event is retried.
func (h *Handler) Handle(ctx context.Context, ev event.Event) (err error) {
	tx, err := h.cfg.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("inbox: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	tag, err := tx.Exec(ctx, h.insert, h.cfg.App, ev.Source, ev.ID)
	if err != nil {
		return fmt.Errorf("inbox: record event %s: %w", ev.ID, err)
	}
	if tag.RowsAffected() == 0 {
		// Handled before, by a transaction that committed.
		return tx.Rollback(ctx)
	}
	if err := h.fn(ctx, tx, ev); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("inbox: commit event %s: %w", ev.ID, err)
	}
	return nil
}

// Prune deletes this app's records older than Retention, a thousand at a
// time, and returns how many it deleted. Run it now and then (daily is
// plenty); until it runs the table only grows.
func (h *Handler) Prune(ctx context.Context, db Execer) (int64, error) {
	q := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM %[1]s WHERE app = $1 AND handled_at < now() - make_interval(secs => $2) LIMIT 1000))`, h.table)
	var total int64
	for {
		tag, err := db.Exec(ctx, q, h.cfg.App, h.cfg.Retention.Seconds())
		if err != nil {
			return total, fmt.Errorf("inbox: prune: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			return total, nil
		}
	}
}
