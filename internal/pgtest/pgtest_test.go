package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/internal/pgdsn"
	"github.com/jackc/pgx/v5"
)

func TestDiscover_NoServerSaysHowToProvideOne(t *testing.T) {
	_, _, err := discover("", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable",
		func() bool { return false }, func() (string, error) { t.Fatal("no docker: no container"); return "", nil })
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "TEST_DATABASE_URL=") {
		t.Fatalf("err = %v, want ErrNoServer saying how to set TEST_DATABASE_URL", err)
	}
}

func TestDiscover_EnvWins(t *testing.T) {
	u, from, err := discover("postgres://x@h/db", LocalURL, func() bool { t.Fatal("probed docker"); return false }, nil)
	if err != nil || u != "postgres://x@h/db" || from != "TEST_DATABASE_URL" {
		t.Fatalf("got %q %q %v", u, from, err)
	}
}

func TestDatabase_IsFreshAndDroppedAfter(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		conn := Conn(t, Database(t))
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "ef_") {
			t.Fatalf("database %q", name)
		}
	})
	var n int
	admin := Conn(t, URL(t))
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s left behind", name)
	}
}

func TestCluster_KillAndRestart(t *testing.T) {
	c := StartCluster(t)
	db := c.Database(t, "app")
	conn := Conn(t, db)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE x (i int); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	c.Kill(t)
	if err := probe(db); err == nil {
		t.Fatal("the server answers after Kill")
	}
	c.Start(t)
	var n int
	if err := Conn(t, db).QueryRow(context.Background(), "SELECT count(*) FROM x").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the restart: %d rows, %v", n, err)
	}
}

// TEST_DATABASE_URL may be a key=value DSN, as pgx and libpq take it: each
// test's database is on that server.
func TestDatabase_KeyValueServer(t *testing.T) {
	cfg, err := pgx.ParseConfig(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	if cfg.Password != "" {
		dsn += " password=" + cfg.Password
	}
	conn := Conn(t, database(t, dsn))
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "ef_") {
		t.Fatalf("connected to database %q, want a fresh ef_ one", name)
	}
}

func TestRedact_HidesAKeyValuePassword(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"host=h user=u password=s3cret", "host=h password='s3 cret' user=u", "postgres://u:s3cret@h/db"} {
		if got := pgdsn.Redact(in); strings.Contains(got, "s3") {
			t.Errorf("pgdsn.Redact(%q) = %q", in, got)
		}
	}
}
