// Package pgident checks the table names eventfleet accepts (the outbox's
// and the inbox's) and derives the names of what it creates beside a table:
// side tables, indexes, trigger functions, NOTIFY channels.
//
// PostgreSQL keeps 63 bytes of an identifier (NAMEDATALEN - 1) and cuts a
// longer one with only a NOTICE, so two long names could end up as one; a
// derived name that would not fit is shortened here instead, keeping a hash
// of the whole name so that it stays the table's own.
package pgident

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// MaxName is the longest identifier, or NOTIFY channel, PostgreSQL keeps.
const MaxName = 63

// MaxPart is the longest part (schema or table) of a table name accepted:
// room for a short suffix ("_set_aside", "_notify") without shortening.
const MaxPart = 50

// ErrInvalidTable: a table name is refused. The packages using it wrap it in
// their own ErrInvalidConfig.
var ErrInvalidTable = errors.New("invalid table name")

// identPart is an unquoted PostgreSQL identifier of at most MaxPart bytes.
var identPart = regexp.MustCompile(fmt.Sprintf(`^[a-z_][a-z0-9_]{0,%d}$`, MaxPart-1))

// Rule says what ParseTable accepts, for configuration errors.
var Rule = fmt.Sprintf("table or schema.table, each part lower-case letters, digits and _, "+
	"starting with a letter or _, at most %d bytes", MaxPart)

// ParseTable validates name, "table" or "schema.table", and returns it as
// an identifier.
func ParseTable(name string) (pgx.Identifier, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%w %q: at most schema.table", ErrInvalidTable, name)
	}
	for _, p := range parts {
		if !identPart.MatchString(p) {
			return nil, fmt.Errorf("%w %q: use %s", ErrInvalidTable, name, Rule)
		}
	}
	return pgx.Identifier(parts), nil
}

// Name is base+suffix when that fits in MaxName bytes; otherwise base cut
// short, "_", a hash of base+suffix, then suffix, MaxName bytes in all.
// With an empty suffix it is the outbox's NOTIFY channel as it always was.
func Name(base, suffix string) string {
	whole := base + suffix
	if len(whole) <= MaxName {
		return whole
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(whole))
	return fmt.Sprintf("%s_%016x%s", base[:MaxName-17-len(suffix)], h.Sum64(), suffix)
}

// IndexSQL creates the index base+suffix (shortened by Name) on table's
// columns, if it is not there. An index that PostgreSQL made under the
// truncated name of an earlier release is renamed instead, so an upgrade
// does not build a second one (CREATE INDEX blocks the table's writes).
func IndexSQL(table pgx.Identifier, base, suffix, columns string) []string {
	name := Name(base, suffix)
	create := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`, pgx.Identifier{name}.Sanitize(), table.Sanitize(), columns)
	whole := base + suffix
	if len(whole) <= MaxName {
		return []string{create}
	}
	// The names are validated identifiers: no quote to escape in the literals.
	rename := fmt.Sprintf(`DO $$
DECLARE s name;
BEGIN
	SELECT n.nspname INTO s FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE i.indrelid = to_regclass('%s') AND c.relname = '%s';
	IF FOUND THEN
		IF to_regclass(format('%%I.%%I', s, '%s')) IS NULL THEN
			EXECUTE format('ALTER INDEX %%I.%%I RENAME TO %%I', s, '%s', '%s');
		ELSE
			-- Both exist: an older release, run after this one, built its
			-- own again. The one of this name stays.
			EXECUTE format('DROP INDEX %%I.%%I', s, '%s');
		END IF;
	END IF;
EXCEPTION WHEN undefined_table OR undefined_object OR duplicate_table THEN
	NULL; -- another migrator did it meanwhile
END $$`, table.Sanitize(), whole[:MaxName], name, whole[:MaxName], name, whole[:MaxName])
	return []string{rename, create}
}
