package proctest_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

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

func TestStartWaitLogAndSignal(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	p := proctest.Start(t, sh, nil, "-c", `echo "$X" >&2; echo '{"msg":"ready"}' >&2; exec sleep 30`)
	p.WaitLog(t, 10*time.Second, `"msg":"nope"`, `"msg":"ready"`)
	if got := p.Stderr.Lines(); len(got) != 2 || got[0] != "" {
		t.Fatalf("stderr lines %q: want the environment empty, then the log line", got)
	}
	if p.Exited() {
		t.Fatal("exited while sleeping")
	}
	p.Signal(t, syscall.SIGTERM)
	if code, ok := p.Wait(10 * time.Second); !ok || code != -1 {
		t.Fatalf("after SIGTERM: code %d, exited %v; want -1 (signalled), true", code, ok)
	}
}

func TestStartInputFeedsStdin(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	p := proctest.StartInput(t, sh, nil, strings.NewReader("line 1\nline 2\n"), "-c", "cat; echo done >&2")
	// cat may be gone by the first look: Poll still sees what it wrote.
	p.Poll(t, 10*time.Second, "both lines on stdout", func() bool { return len(p.Stdout.Lines()) == 2 })
	if code, ok := p.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("code %d, exited %v; want 0, true", code, ok)
	}
	if got := p.Stdout.String(); got != "line 1\nline 2\n" {
		t.Fatalf("stdout %q, want stdin back", got)
	}
}
