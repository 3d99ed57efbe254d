package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/pgdsn"
	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// LocalURL is where tests look for a server when TEST_DATABASE_URL is unset.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Image is what testcontainers starts when no server answers.
const Image = "postgres:15-alpine"

// ErrNoServer: no PostgreSQL for the tests.
var ErrNoServer = errors.New("pgtest: no PostgreSQL server for the tests")

var (
	once      sync.Once
	serverURL string
	serverErr error
)

// URL is the server's URL (an administrative database on it); the test fails
// when there is none, and is skipped with -short.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL; skipped with -short")
	}
	once.Do(func() {
		var from string
		serverURL, from, serverErr = discover(os.Getenv("TEST_DATABASE_URL"), LocalURL, brokertest.DockerLikely, startContainer)
		if serverErr == nil {
			fmt.Fprintf(os.Stderr, "pgtest: tests use PostgreSQL at %s (%s)\n", pgdsn.Redact(serverURL), from)
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverURL
}

func discover(envURL, localURL string, docker func() bool, container func() (string, error)) (string, string, error) {
	if envURL != "" {
		return envURL, "TEST_DATABASE_URL", nil
	}
	localErr := probe(localURL)
	if localErr == nil {
		return localURL, "TEST_DATABASE_URL unset; a server answers there", nil
	}
	why := fmt.Sprintf("TEST_DATABASE_URL is unset, nothing answers at %s (%v)", pgdsn.Redact(localURL), localErr)
	if !docker() {
		why += ", and no Docker socket was found"
	} else {
		u, err := container()
		if err == nil {
			return u, "TEST_DATABASE_URL unset, none at " + pgdsn.Redact(localURL) + "; testcontainers started " + Image, nil
		}
		why += ", and testcontainers failed: " + err.Error()
	}
	return "", "", fmt.Errorf("%w: %s. Provide one: set TEST_DATABASE_URL=postgres://user:password@host:5432/postgres "+
		"(a user that may create databases; each test makes its own and drops it), or start a local PostgreSQL "+
		"(apt install postgresql, trust or the URL's password on 127.0.0.1:5432), or run where a Docker engine is "+
		"reachable so testcontainers can start %s", ErrNoServer, why, Image)
}

func probe(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func startContainer() (u string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, Image, tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", err
	}
	u, err = c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return "", err
	}
	return u, nil
}

// Database creates a fresh database for t, dropped when t ends, and returns
// its URL (in the form of TEST_DATABASE_URL: URL or key=value DSN).
func Database(t testing.TB) string {
	t.Helper()
	return database(t, URL(t))
}

func database(t testing.TB, admin string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "ef_" + strings.ToLower(strings.Trim(nonName(t.Name()), "_")) + "_" + hex.EncodeToString(b)
	if len(name) > 63 {
		name = name[:54] + "_" + hex.EncodeToString(b)
	}
	u, err := pgdsn.WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: TEST_DATABASE_URL: %v", err)
	}
	exec_(t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec_(t, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return u
}

// Conn connects to u for test plumbing; closed when t ends.
func Conn(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to %s: %v", pgdsn.Redact(u), err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exec_(t testing.TB, u, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to %s: %v", pgdsn.Redact(u), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func nonName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return out
}
