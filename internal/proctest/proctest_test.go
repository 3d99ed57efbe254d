package proctest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/internal/proctest"
)

func TestBuildRunsTheCommand(t *testing.T) {
	bin, err := proctest.Build(t.TempDir(), "worker", "github.com/eventfleet/eventfleet/cmd/worker")
	if err != nil {
		t.Fatal(err)
	}
	var out proctest.Buffer
	cmd := exec.Command(bin, "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // -h exits 0 or 2 depending on the flag package; the text is what counts
	if !strings.Contains(out.String(), "worker") || len(out.Lines()) < 2 {
		t.Fatalf("built binary's help: %q", out.String())
	}
	if _, err := proctest.Build(t.TempDir(), "x", "github.com/eventfleet/eventfleet/no/such/cmd"); err == nil {
		t.Fatal("building a package that does not exist succeeded")
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s: %v %v", bin, fi, err)
	}
}
