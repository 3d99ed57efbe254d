package deploy

import (
	"cmp"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/eventfleet/eventfleet/outbox"
)

// The outbox relay's deployment (issue 16): its database URL is a secret on
// Fly and built from the database service's credentials in compose; compose
// creates the original design's event_store table and its NOTIFY trigger on
// the database's first boot, runs relay migrate once before the relays, and
// the demo app writes event_store rows in transactions.

// eventStoreDDL is the original design's migration, exactly as issue 16
// quotes it.
const eventStoreDDL = `
CREATE TABLE event_store (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregate_id VARCHAR(255) NOT NULL,
  event_type VARCHAR(255) NOT NULL,
  event_data JSONB NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  processed BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_event_store_unprocessed ON event_store (processed, timestamp) WHERE processed = FALSE;
CREATE INDEX idx_event_store_aggregate ON event_store (aggregate_id, version);`

// initDir is where the postgres image runs *.sql on its first boot.
const initDir = "/docker-entrypoint-initdb.d"

// mounts are a service's volumes, from the short syntax ("src:dst:ro") or
// the long one (source:, target:).
type mounts []mount

type mount struct{ Source, Target string }

func (m *mounts) UnmarshalYAML(n *yaml.Node) error {
	for _, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			parts := strings.Split(item.Value, ":")
			if len(parts) == 1 {
				*m = append(*m, mount{Target: parts[0]})
			} else {
				*m = append(*m, mount{Source: parts[0], Target: parts[1]})
			}
		case yaml.MappingNode:
			var long mount
			if err := item.Decode(&struct {
				Source *string `yaml:"source"`
				Target *string `yaml:"target"`
			}{&long.Source, &long.Target}); err != nil {
				return err
			}
			*m = append(*m, long)
		}
	}
	return nil
}

// postgresURLish is a value that is a PostgreSQL URL or a key=value DSN
// with a password.
var postgresURLish = regexp.MustCompile(`^postgres(ql)?://|(^|\s)password\s*=`)

func TestFlyDatabaseURLIsSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, ok := b.fly.Env["DATABASE_URL"]; ok {
		t.Errorf("fly.toml [env] sets DATABASE_URL, which holds the database password; remove it and run `fly secrets set DATABASE_URL=%s`", flySecretDatabaseURL)
	}
	for name, v := range b.fly.Env {
		if s, ok := v.(string); ok && postgresURLish.MatchString(s) {
			t.Errorf("fly.toml [env] %s holds a PostgreSQL URL or DSN; it carries a password, keep it in `fly secrets`", name)
		}
	}
	if len(b.fly.groups(relayRole)) == 0 {
		return // TestCommands reports it
	}
	raw, err := os.ReadFile(filepath.Join(root, "fly.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fly secrets set DATABASE_URL=" + flySecretDatabaseURL, strings.Join(migrateCmd, " ")} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("fly.toml runs a relay group, but its comments do not show %q", want)
		}
	}
}

// databaseOf is the compose service that the relay command of svc connects
// to (DATABASE_URL's host), and the URL.
func databaseOf(t *testing.T, b bundle, svc string) (string, *url.URL) {
	t.Helper()
	s := b.compose.Services[svc]
	u, err := url.Parse(s.Environment.Set["DATABASE_URL"])
	if err != nil || u.Hostname() == "" {
		t.Errorf("docker-compose.yml service %q: DATABASE_URL is not a postgres://user:password@host:5432/db URL naming a service; set DATABASE_URL=postgres://${POSTGRES_USER:-eventfleet}:${POSTGRES_PASS:-eventfleet-demo}@postgres:5432/library", svc)
		return "", nil
	}
	return u.Hostname(), u
}

// relayServices are the compose services running role r, sorted.
func relayServices(b bundle, r role) []string {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(b.compose.appServices())) {
		if classify(b.compose.Services[name].Command) == r {
			names = append(names, name)
		}
	}
	return names
}

// The relays start once their database answers over TCP and relay migrate
// has made their tables, and each relay's migrate works on its own table.
func TestComposeRelayWaitsForItsDatabaseAndMigrate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	migrates := relayServices(b, migrateRole)
	for _, name := range append(relayServices(b, relayRole), migrates...) {
		s := b.compose.Services[name]
		db, _ := databaseOf(t, b, name)
		if db == "" {
			continue
		}
		dbs, ok := b.compose.Services[db]
		if !ok {
			t.Errorf("docker-compose.yml service %q connects to %q (DATABASE_URL), which is not a service in the file", name, db)
			continue
		}
		if cond := s.DependsOn[db]; cond != "service_healthy" {
			t.Errorf("docker-compose.yml service %q: depends_on %s has condition %q; use `condition: service_healthy` so it starts after the database answers", name, db, cond)
		}
		hc := dbs.Healthcheck
		if hc == nil || hc.Disable || !slices.Contains(hc.Test, "pg_isready") || !slices.Contains(hc.Test, "-h") {
			t.Errorf("docker-compose.yml service %q has no healthcheck asking over TCP; add test: [\"CMD\", \"pg_isready\", \"-h\", \"127.0.0.1\", …] (on the first boot the init scripts run on a server that only the Unix socket reaches)", db)
		}
		if classify(s.Command) != relayRole {
			continue
		}
		mine := func(m string) bool {
			me, other := s.Environment.Set, b.compose.Services[m].Environment.Set
			return s.DependsOn[m] == "service_completed_successfully" &&
				other["DATABASE_URL"] == me["DATABASE_URL"] && other["OUTBOX_FORMAT"] == me["OUTBOX_FORMAT"] && other["OUTBOX_TABLE"] == me["OUTBOX_TABLE"]
		}
		if !slices.ContainsFunc(migrates, mine) {
			t.Errorf("docker-compose.yml service %q does not wait (service_completed_successfully) for a service running %q on its own DATABASE_URL, OUTBOX_FORMAT and OUTBOX_TABLE (of %q); without it the set-aside table is missing",
				name, strings.Join(migrateCmd, " "), migrates)
		}
	}
}

// A one-shot that compose restarts runs again and again.
func TestComposeOneShotsExit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, s := range b.compose.appServices() {
		if !classify(s.Command).oneShot() {
			continue
		}
		if s.Restart != "no" && s.Restart != "on-failure" {
			t.Errorf("docker-compose.yml service %q runs the one-shot %q with restart %q; set restart: \"no\", or it runs again after every exit", name, strings.Join(s.Command, " "), s.Restart)
		}
	}
}

func TestComposeDatabaseCredentialsFromEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range append(relayServices(b, relayRole), relayServices(b, migrateRole)...) {
		db, u := databaseOf(t, b, name)
		raw, ok := b.rawCompose.Services[db]
		if !ok {
			continue // TestComposeRelayWaitsForItsDatabaseAndMigrate reports it
		}
		user, pass := raw.Environment.Set["POSTGRES_USER"], raw.Environment.Set["POSTGRES_PASSWORD"]
		for v, val := range map[string]string{"POSTGRES_USER": user, "POSTGRES_PASSWORD": pass} {
			if !envSubst.MatchString(val) {
				t.Errorf("docker-compose.yml %s sets %s = %q; take it from the environment with a demo default: ${POSTGRES_USER:-eventfleet}, ${POSTGRES_PASS:-eventfleet-demo}", db, v, val)
			}
		}
		m := regexp.MustCompile(`^postgres(ql)?://(\$\{[^}]*\}):(\$\{[^}]*\})@`).FindStringSubmatch(b.rawCompose.Services[name].Environment.Set["DATABASE_URL"])
		if m == nil || m[2] != user || m[3] != pass {
			t.Errorf("docker-compose.yml service %q: DATABASE_URL does not take its user and password from %s's variables; write postgres://%s:%s@%s:5432/…", name, db, user, pass, db)
		}
		if want := cmp.Or(b.compose.Services[db].Environment.Set["POSTGRES_DB"], b.compose.Services[db].Environment.Set["POSTGRES_USER"]); u != nil && strings.TrimPrefix(u.Path, "/") != want {
			t.Errorf("docker-compose.yml service %q: DATABASE_URL names database %q, but %s creates %q (POSTGRES_DB)", name, u.Path, db, want)
		}
	}
	// Other clients of the database (the demo app, with psql's PG*
	// variables) use the same.
	for _, name := range slices.Sorted(maps.Keys(b.rawCompose.Services)) {
		s := b.rawCompose.Services[name]
		for v, want := range map[string]string{"PGUSER": "POSTGRES_USER", "PGPASSWORD": "POSTGRES_PASSWORD"} {
			got, ok := s.Environment.Set[v]
			if !ok {
				continue
			}
			host := b.compose.Services[name].Environment.Set["PGHOST"]
			if db, ok := b.rawCompose.Services[host]; !ok || db.Environment.Set[want] != got {
				t.Errorf("docker-compose.yml service %q sets %s = %q, but the database it names (PGHOST=%s) has %s = %q; use the same", name, v, got, host, want, db.Environment.Set[want])
			}
		}
	}
}

// The database's first boot creates the table the relays read: event_store
// exactly as the original design has it, and the NOTIFY trigger that
// `publisher relay migrate` prints for it.
func TestComposeDatabaseInitCreatesTheRelaysTable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range relayServices(b, relayRole) {
		env := b.compose.Services[name].Environment.Set
		if env["OUTBOX_FORMAT"] != string(outbox.FormatEventStore) {
			continue // the eventfleet table is relay migrate's
		}
		db, _ := databaseOf(t, b, name)
		dbs, ok := b.compose.Services[db]
		if !ok {
			continue
		}
		var dir string
		for _, m := range dbs.Volumes {
			if m.Target == initDir {
				dir = m.Source
			}
		}
		if !strings.HasPrefix(dir, "./") {
			t.Errorf("docker-compose.yml service %q mounts no directory of this repository at %s; mount ./deploy/postgres there, so the first boot creates %s's table", db, initDir, name)
			continue
		}
		files, err := filepath.Glob(filepath.Join(root, dir, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		table := cmp.Or(env["OUTBOX_TABLE"], "event_store")
		trigger, err := outbox.NotifyTriggerSQL(table)
		if err != nil {
			t.Fatal(err)
		}
		// The image runs the files in name order (Glob's): the table first.
		createdAt, triggerAt := -1, -1
		for i, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sql := withoutComments(string(raw))
			switch {
			case table == "event_store" && sql == strings.TrimSpace(eventStoreDDL):
				createdAt = i
			case sql == strings.TrimSpace(trigger):
				triggerAt = i
			}
		}
		if createdAt < 0 && table == "event_store" {
			t.Errorf("%s/*.sql has no file that is the original design's event_store migration exactly (issue 16); the relay %q reads that table", dir, name)
		}
		if triggerAt < 0 {
			t.Errorf("%s/*.sql has no file that is exactly the trigger `OUTBOX_FORMAT=event_store publisher relay migrate` prints for %s:\n%s", dir, table, trigger)
		} else if triggerAt < createdAt {
			t.Errorf("%s: the trigger's file sorts before the table's; the image runs them in name order", dir)
		}
	}
}

// withoutComments drops -- comment lines and surrounding blank space.
func withoutComments(sql string) string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// The demo app writes the relays' table in transactions, some rolled back:
// what it shows is that only committed rows arrive.
func TestComposeDemoWritesInTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var tables []string
	for _, name := range relayServices(b, relayRole) {
		if env := b.compose.Services[name].Environment.Set; env["OUTBOX_FORMAT"] == string(outbox.FormatEventStore) {
			tables = append(tables, cmp.Or(env["OUTBOX_TABLE"], "event_store"))
		}
	}
	for _, table := range slices.Compact(slices.Sorted(slices.Values(tables))) {
		found := false
		for _, s := range b.compose.Services {
			cmd := strings.Join(s.Command, " ")
			if !strings.Contains(cmd, "INSERT INTO "+table+" ") {
				continue
			}
			found = true
			for _, want := range []string{"BEGIN;", "COMMIT", "ROLLBACK", "ON_ERROR_STOP=1"} {
				if !strings.Contains(cmd, want) {
					t.Errorf("docker-compose.yml: the demo that writes %s does not use %s; it inserts in transactions, some rolled back, and stops on an error", table, want)
				}
			}
		}
		if !found {
			t.Errorf("docker-compose.yml: a relay reads %s, but no service writes it (INSERT INTO %s …); add the demo app", table, table)
		}
	}
}
