package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Bin is where the PostgreSQL server binaries are (Debian's layout).
var Bin = "/usr/lib/postgresql/15/bin"

// Cluster is a private PostgreSQL server for fault tests: its own data
// directory and port, so a test may kill and restart it. It runs as the
// system user postgres (initdb refuses root), with trust authentication on
// 127.0.0.1 only.
type Cluster struct {
	Port int
	dir  string
}

// StartCluster makes and starts a private server, stopped and removed when
// t ends. It skips the test when PostgreSQL's binaries or the postgres user
// are missing.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: needs a private PostgreSQL; skipped with -short")
	}
	if _, err := os.Stat(filepath.Join(Bin, "initdb")); err != nil {
		t.Skipf("fault test needs PostgreSQL's server binaries at %s to start a private server", Bin)
	}
	dir, err := os.MkdirTemp("", "eventfleet-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, Port: brokertest.FreePort(t)}
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate", "-w")
		_ = os.RemoveAll(dir)
	})
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Skipf("fault test needs the postgres system user to own its data directory: %v: %s", err, out)
	}
	if out, err := c.asPostgres(filepath.Join(Bin, "initdb"), "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Start(t)
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// asPostgres runs a command as the postgres user when this process is root.
func (c *Cluster) asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (c *Cluster) pgctl(args ...string) error {
	all := append([]string{"-D", c.data()}, args...)
	out, err := c.asPostgres(filepath.Join(Bin, "pg_ctl"), all...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v: %s", args, err, out)
	}
	return nil
}

// URL is the server's administrative URL (database postgres).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
}

// Start starts the server (again, on its data) and waits until it serves.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.Port, c.dir)
	if err := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		t.Fatalf("%v\n%s", err, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for probe(c.URL()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("private PostgreSQL on port %d does not answer", c.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once (pg_ctl stop -m immediate: every backend
// gone, crash recovery on the next start), as a crash would.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	if err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		t.Fatal(err)
	}
}

// Database creates a database on the cluster and returns its URL.
func (c *Cluster) Database(t testing.TB, name string) string {
	t.Helper()
	exec_(t, c.URL(), "CREATE DATABASE "+name)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}
