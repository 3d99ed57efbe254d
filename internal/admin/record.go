package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Record is what a running process writes to its runtime directory so that
// its `health` command finds it: the address it bound (which the default
// port's fallback makes unpredictable) and the instance id that the address
// must answer with.
type Record struct {
	Role     string `json:"role"`
	App      string `json:"app"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
	Addr     string `json:"addr"`
}

// ErrRuntimeDir means the runtime directory cannot hold records safely.
var ErrRuntimeDir = errors.New("runtime directory unusable")

// RuntimeDir is where records live: $XDG_RUNTIME_DIR/eventfleet when
// XDG_RUNTIME_DIR is set, else eventfleet-<uid> in the temporary directory
// ($TMPDIR, default /tmp). A container's health check runs in the container,
// so it shares the directory with the process it asks.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "eventfleet")
	}
	return filepath.Join(os.TempDir(), "eventfleet-"+strconv.Itoa(os.Getuid()))
}

// WriteRecord records id and addr for this process in dir and returns the
// function that removes the record (call it on stop).
func WriteRecord(dir string, id Identity, addr string) (remove func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeDir, err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	b, err := json.Marshal(Record{Role: id.Role, App: id.App, Instance: id.Instance, PID: os.Getpid(), Addr: addr})
	if err != nil {
		return nil, err
	}
	name := filepath.Join(dir, fmt.Sprintf("%s.%d.json", id.Role, os.Getpid()))
	// Write then rename, so a health check never reads half a record.
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeDir, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("%w: %w", ErrRuntimeDir, err)
	}
	return func() { _ = os.Remove(name) }, nil
}

// Announce writes this process's record in RuntimeDir and returns what
// removes it. Without a record the health command asks the default address,
// so a failure is only a warning.
func Announce(log *slog.Logger, id Identity, addr string) (remove func()) {
	remove, err := WriteRecord(RuntimeDir(), id, addr)
	if err != nil {
		log.Warn("cannot record the admin address; the health command will ask METRICS_ADDR's default instead", "err", err)
		return func() {}
	}
	return remove
}

// Records returns the records in dir of live processes of role and app.
// Records of processes that are gone (killed, so they could not remove
// theirs) are skipped and removed.
func Records(dir, role, app string) ([]Record, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeDir, err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		var r Record
		if err != nil || json.Unmarshal(b, &r) != nil || r.PID <= 0 {
			continue
		}
		if !alive(r.PID) {
			_ = os.Remove(path)
			continue
		}
		if r.Role == role && r.App == app {
			out = append(out, r)
		}
	}
	return out, nil
}
