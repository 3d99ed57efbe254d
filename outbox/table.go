package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/internal/pgident"
)

// DefaultTable is the eventfleet-format outbox table's name.
const DefaultTable = "eventfleet_outbox"

// table is a validated table name and the names derived from it, each
// whole (pgident.Name shortens one that would not fit).
type table struct {
	name     string // as configured, e.g. "app.eventfleet_outbox"
	ident    pgx.Identifier
	setAside pgx.Identifier // the side table for set-aside rows
	notify   pgx.Identifier // the trigger function
	trigger  string         // the trigger's name
}

// parseTable validates name: one or two parts ("table", "schema.table") of
// lower-case letters, digits and "_", each at most pgident.MaxPart bytes.
func parseTable(name string) (table, error) {
	ident, err := pgident.ParseTable(name)
	if err != nil {
		return table{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	last := ident[len(ident)-1]
	derive := func(suffix string) pgx.Identifier {
		d := append(pgx.Identifier{}, ident...)
		d[len(d)-1] = pgident.Name(last, suffix)
		return d
	}
	return table{name: name, ident: ident, setAside: derive("_set_aside"), notify: derive("_notify"),
		trigger: pgident.Name(last, "_notify")}, nil
}

// channel is the LISTEN/NOTIFY channel of the table: its name as configured,
// shortened with a hash when it is longer than a channel may be (pg_notify
// refuses it, failing the insert; schema.table may be 101 bytes).
func (t table) channel() string { return pgident.Name(t.name, "") }

// Migrate creates what format needs in the database, if it is not there:
// for FormatEventfleet the outbox table, its insert trigger (one NOTIFY per
// inserting statement) and the side table; for FormatEventStore only the side
// table (the app's table is never altered; README has the trigger to add by
// hand). It needs PostgreSQL 14 or later.
func Migrate(ctx context.Context, conn *pgx.Conn, tableName string, format Format) error {
	t, err := parseTable(tableName)
	if err != nil {
		return err
	}
	f, err := format.impl()
	if err != nil {
		return err
	}
	for _, stmt := range append(f.migrate(t), setAsideSQL(t)...) {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: migrate %s: %w", t.name, err)
		}
	}
	return nil
}

func setAsideSQL(t table) []string {
	return append([]string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	row_key text PRIMARY KEY,
	aggregate_id text NOT NULL,
	reason text NOT NULL,
	attempts integer NOT NULL,
	first_failed_at timestamptz NOT NULL DEFAULT now(),
	last_failed_at timestamptz NOT NULL DEFAULT now()
)`, t.setAside.Sanitize()),
	}, pgident.IndexSQL(t.setAside, t.setAside[len(t.setAside)-1], "_aggregate", "aggregate_id")...)
}

// NotifyTriggerSQL is the trigger that wakes a relay at once on every insert
// into t, as Migrate installs it for the eventfleet format; for event_store it
// is offered to run by hand. Without it the relay finds rows within
// PollInterval.
func NotifyTriggerSQL(tableName string) (string, error) {
	t, err := parseTable(tableName)
	if err != nil {
		return "", err
	}
	return strings.Join(notifySQL(t), ";\n") + ";\n", nil
}

func notifySQL(t table) []string {
	return []string{
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(%s, '');
	RETURN NULL;
END $$`, t.notify.Sanitize(), quoteLiteral(t.channel())),
		fmt.Sprintf(`CREATE OR REPLACE TRIGGER %s AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()`,
			pgx.Identifier{t.trigger}.Sanitize(), t.ident.Sanitize(), t.notify.Sanitize()),
	}
}

// quoteLiteral quotes s as an SQL string literal; s is a validated table
// name, so it has no quote to double, but it is doubled anyway.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
