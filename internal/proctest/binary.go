package proctest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// A Binary is a command that tests run as a process. It is built on first
// use, once per test binary, so a run that selects none of the tests using it
// builds nothing; Main removes what was built.
type Binary struct {
	name, pkg string

	once sync.Once
	path string
	err  error
}

// NewBinary names the command at pkg (an import path) built as name.
func NewBinary(name, pkg string) *Binary { return &Binary{name: name, pkg: pkg} }

// Path builds the command if no test did yet and returns its path, failing t
// if it does not build.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		var d string
		if d, b.err = binDir(); b.err == nil {
			b.path, b.err = Build(d, b.name, b.pkg)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// dir holds every Binary built by this test binary; Main removes it.
var (
	dirMu sync.Mutex
	dir   string
)

func binDir() (string, error) {
	dirMu.Lock()
	defer dirMu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "eventfleet-test-bin-")
		if err != nil {
			return "", fmt.Errorf("temp dir for test binaries: %w", err)
		}
		dir = d
	}
	return dir, nil
}

func removeBinaries() {
	dirMu.Lock()
	defer dirMu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
		dir = ""
	}
}
