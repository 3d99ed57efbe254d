package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/admin"
)

// fake answers /readyz with 200 and body on a port of its own, as another
// process on the host would; it returns the address.
func fake(t *testing.T, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// serve starts a real endpoint server for id that is ready.
func serve(t *testing.T, id admin.Identity) string {
	t.Helper()
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Identity: id, Ready: func() error { return nil }, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv.Addr()
}

func check(t *testing.T, tg admin.Target) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return admin.Check(ctx, tg)
}

// TestStart_DefaultTakenFallsBack: with Fallback a taken port is replaced by
// a free one on the same host, and the WARN line names it.
func TestStart_DefaultTakenFallsBack(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var logs bytes.Buffer
	srv, err := admin.Start(admin.Config{Addr: taken.Addr().String(), Fallback: true, Ready: func() error { return nil },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Start on a taken address with Fallback: %v", err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	host, port, _ := net.SplitHostPort(srv.Addr())
	if host != "127.0.0.1" || srv.Addr() == taken.Addr().String() || port == "0" {
		t.Errorf("bound %s, want another port on 127.0.0.1 than %s", srv.Addr(), taken.Addr())
	}
	var line struct{ Level, Addr, Default string }
	_ = json.Unmarshal(logs.Bytes(), &line)
	if line.Level != "WARN" || line.Addr != srv.Addr() || line.Default != taken.Addr().String() {
		t.Errorf("log %s, want a WARN naming addr %s and default %s", logs.String(), srv.Addr(), taken.Addr())
	}
}

func TestCheck_RecordedProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "run")
	id := admin.NewIdentity(admin.RoleWorker, "orders")
	addr := serve(t, id)
	remove, err := admin.WriteRecord(dir, id, addr)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := check(t, admin.Target{Role: admin.RoleWorker, App: "orders", Dir: dir, Default: "127.0.0.1:1"})
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], id.Instance) || !strings.Contains(lines[0], addr) {
		t.Fatalf("Check = %q, %v; want one ready line naming %s at %s", lines, err, id.Instance, addr)
	}
	// Another app's worker is not this one.
	if _, err := check(t, admin.Target{Role: admin.RoleWorker, App: "billing", Dir: dir, Default: "127.0.0.1:1"}); !errors.Is(err, admin.ErrNotReady) ||
		!strings.Contains(err.Error(), "no record of a running worker of app billing") {
		t.Errorf("Check for another app: %v, want not ready naming the missing record", err)
	}
	remove()
	if recs, err := admin.Records(dir, admin.RoleWorker, "orders"); err != nil || len(recs) != 0 {
		t.Errorf("after remove: %v %v, want no record", recs, err)
	}
}

// TestCheck_TwoWorkersOfOneApp: both are asked, and both must be ready.
func TestCheck_TwoWorkersOfOneApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := admin.NewIdentity(admin.RoleWorker, "orders"), admin.NewIdentity(admin.RoleWorker, "orders")
	if a.Instance == b.Instance {
		t.Fatal("two identities share an instance id")
	}
	if _, err := admin.WriteRecord(dir, a, serve(t, a)); err != nil {
		t.Fatal(err)
	}
	// WriteRecord names the file by pid, so b's record is written by hand
	// as a second process (this test's parent, alive) would.
	writeRecord(t, dir, admin.Record{Role: b.Role, App: b.App, Instance: b.Instance, PID: os.Getppid(), Addr: serve(t, b)})
	lines, err := check(t, admin.Target{Role: admin.RoleWorker, App: "orders", Dir: dir, Default: "127.0.0.1:1"})
	if err != nil || len(lines) != 2 {
		t.Fatalf("Check = %q, %v; want two ready lines", lines, err)
	}
	// One of them not answering fails the check, naming its pid.
	writeRecord(t, dir, admin.Record{Role: b.Role, App: b.App, Instance: b.Instance, PID: os.Getppid(), Addr: "127.0.0.1:1"})
	if _, err := check(t, admin.Target{Role: admin.RoleWorker, App: "orders", Dir: dir, Default: "127.0.0.1:1"}); !errors.Is(err, admin.ErrNotReady) ||
		!strings.Contains(err.Error(), "pid") {
		t.Errorf("Check with one down: %v, want not ready naming the pid", err)
	}
}

// TestCheck_OtherProcessAnswers is finding 11: the address answers "ready",
// but as another process; the check must not pass.
func TestCheck_OtherProcessAnswers(t *testing.T) {
	t.Parallel()
	publisher := fake(t, `{"status":"ready","role":"publisher","app":"orders","instance":"0123456789abcdef"}`)
	anonymous := fake(t, `{"status":"ready"}`)
	for _, tc := range []struct {
		name   string
		target admin.Target
		want   string
	}{
		{"explicit address, other role", admin.Target{Addr: publisher}, "answers as the publisher of app orders"},
		{"explicit address, no role", admin.Target{Addr: anonymous}, "does not name itself"},
		{"no record, default is another role", admin.Target{Default: publisher}, "no record of a running worker of app orders"},
		{"no record, default has no role", admin.Target{Default: anonymous}, "does not name itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.target
			tg.Role, tg.App, tg.Dir = admin.RoleWorker, "orders", t.TempDir()
			lines, err := check(t, tg)
			if !errors.Is(err, admin.ErrOtherProcess) || !strings.Contains(err.Error(), tc.want) || len(lines) != 0 {
				t.Errorf("Check = %q, %v; want ErrOtherProcess saying %q", lines, err, tc.want)
			}
		})
	}
	// A live pid whose recorded address now answers with another instance
	// (the pid was reused): the record is skipped and the default asked.
	dir := t.TempDir()
	writeRecord(t, dir, admin.Record{Role: "worker", App: "orders", Instance: "feedfacefeedface", PID: os.Getpid(),
		Addr: fake(t, `{"status":"ready","role":"worker","app":"orders","instance":"0000000000000000"}`)})
	if _, err := check(t, admin.Target{Role: admin.RoleWorker, App: "orders", Dir: dir, Default: publisher}); !errors.Is(err, admin.ErrOtherProcess) {
		t.Errorf("Check with a stale record: %v, want ErrOtherProcess from the default", err)
	}
}

// TestRecords_DeadProcessIgnored: a killed process cannot remove its record;
// it must not count, and is removed.
func TestRecords_DeadProcessIgnored(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeRecord(t, dir, admin.Record{Role: "worker", App: "orders", Instance: "x", PID: cmd.Process.Pid, Addr: serve(t, admin.Identity{Role: "worker", App: "orders", Instance: "x"})})
	recs, err := admin.Records(dir, "worker", "orders")
	if err != nil || len(recs) != 0 {
		t.Errorf("Records = %v, %v; want none for the dead pid %d", recs, err, cmd.Process.Pid)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead process's record is still there: %v", err)
	}
}

func TestWriteRecord_RefusesAnOpenDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WriteRecord(dir, admin.NewIdentity("worker", "a"), "127.0.0.1:1"); !errors.Is(err, admin.ErrRuntimeDir) {
		t.Errorf("WriteRecord in a world-writable directory: %v, want ErrRuntimeDir", err)
	}
}

func writeRecord(t *testing.T, dir string, r admin.Record) string {
	t.Helper()
	b, _ := json.Marshal(r)
	path := filepath.Join(dir, r.Role+"."+r.Instance+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
