package outbox

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the eventfleet-format outbox table's name.
const DefaultTable = "eventfleet_outbox"

// identPart is one part of a table name: an unquoted PostgreSQL identifier
// (63 bytes at most), so that the names derived from it fit too.
var identPart = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,49}$`)

// table is a validated table name and the names derived from it.
type table struct {
	name     string // as configured, e.g. "app.eventfleet_outbox"
	ident    pgx.Identifier
	setAside pgx.Identifier // the side table for set-aside rows
	notify   pgx.Identifier // the trigger function
	trigger  string         // the trigger's name
}

// parseTable validates name: one or two parts ("table", "schema.table") of
// lower-case letters, digits and "_", each at most 50 bytes.
func parseTable(name string) (table, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return table{}, fmt.Errorf("%w: table %q: at most schema.table", ErrInvalidConfig, name)
	}
	for _, p := range parts {
		if !identPart.MatchString(p) {
			return table{}, fmt.Errorf("%w: table %q: each part must be lower-case letters, digits and _, "+
				"starting with a letter or _, at most 50 bytes", ErrInvalidConfig, name)
		}
	}
	ident := pgx.Identifier(parts)
	derive := func(suffix string) pgx.Identifier {
		d := append(pgx.Identifier{}, ident...)
		d[len(d)-1] += suffix
		return d
	}
	return table{name: name, ident: ident, setAside: derive("_set_aside"), notify: derive("_notify"),
		trigger: parts[len(parts)-1] + "_notify"}, nil
}

// maxChannel is the longest LISTEN/NOTIFY channel PostgreSQL takes
// (NAMEDATALEN - 1): pg_notify refuses a longer one, failing the insert.
const maxChannel = 63

// channel is the LISTEN/NOTIFY channel of the table: its name as configured,
// or, when that is too long for a channel (schema.table may be 101 bytes),
// its first 46 bytes, "_" and a hash of the whole name.
func (t table) channel() string {
	if len(t.name) <= maxChannel {
		return t.name
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.name))
	return fmt.Sprintf("%s_%016x", t.name[:maxChannel-17], h.Sum64())
}

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
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	row_key text PRIMARY KEY,
	aggregate_id text NOT NULL,
	reason text NOT NULL,
	attempts integer NOT NULL,
	first_failed_at timestamptz NOT NULL DEFAULT now(),
	last_failed_at timestamptz NOT NULL DEFAULT now()
)`, t.setAside.Sanitize()),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (aggregate_id)`,
			pgx.Identifier{t.setAside[len(t.setAside)-1] + "_aggregate"}.Sanitize(), t.setAside.Sanitize()),
	}
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
