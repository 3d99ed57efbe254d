package proctest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main is the TestMain of a package whose tests run Binaries: it runs the
// tests, removes the binaries they built, and, when the tests passed, fails
// the run if goroutines are left over (goleak, with opts). It replaces
// goleak.VerifyTestMain there, which exits before anything can be removed.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	removeBinaries()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
