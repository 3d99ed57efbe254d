package proctest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Proc is a running binary whose output the test reads while it runs.
type Proc struct {
	Stdout Buffer
	Stderr Buffer

	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	code int           // exit code, valid once done is closed
}

// Start runs bin with args and exactly env: nothing of the test's own
// environment leaks in, except GORACE, which tunes the race detector of a
// binary built with -race. At t's cleanup the process is killed if it still
// runs; a data race it reported fails t, and a failed t logs the tail of its
// stderr.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	return StartInput(t, bin, env, nil, args...)
}

// StartInput is Start with stdin as the process's standard input; nil gives
// it none (reads see end of file), as Start does.
func StartInput(t testing.TB, bin string, env []string, stdin io.Reader, args ...string) *Proc {
	t.Helper()
	p := &Proc{name: bin[strings.LastIndexByte(bin, os.PathSeparator)+1:], done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	if g := os.Getenv("GORACE"); g != "" {
		p.cmd.Env = append(p.cmd.Env[:len(p.cmd.Env):len(p.cmd.Env)], "GORACE="+g)
	}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, &p.Stdout, &p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.name = fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid)
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.Stderr.String(), "DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", p, p.Stderr.String())
		}
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", p, Tail(p.Stderr.String(), 3000))
		}
	})
	return p
}

// String names the process by its binary and pid, for messages.
func (p *Proc) String() string { return p.name }

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Code is the exit code; valid once Done is closed (-1 after a signal).
func (p *Proc) Code() int {
	<-p.done
	return p.code
}

// Wait waits up to timeout for the process to exit and returns its exit code.
func (p *Proc) Wait(timeout time.Duration) (code int, exited bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.code, true
	case <-timer.C:
		return -1, false
	}
}

// Signal sends sig to the process, failing t if it cannot.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p, err)
	}
}

// Kill SIGKILLs the process (no chance to clean up) and waits until it is
// gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL)
	if _, ok := p.Wait(10 * time.Second); !ok {
		t.Fatalf("%s still running 10s after SIGKILL", p)
	}
}

// WaitLog waits up to timeout until stderr contains one of wants, failing t
// if the process exits first or the time passes.
func (p *Proc) WaitLog(t testing.TB, timeout time.Duration, wants ...string) {
	t.Helper()
	p.Poll(t, timeout, fmt.Sprintf("log %q", wants), func() bool {
		log := p.Stderr.String()
		for _, w := range wants {
			if strings.Contains(log, w) {
				return true
			}
		}
		return false
	})
}

// Poll calls cond every 20 ms until it is true, failing t, with the tail of
// stderr, if the process exits first or timeout passes; what names the
// awaited state in the message.
func (p *Proc) Poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.Exited() {
			if cond() { // the state came with the exit: output is copied until then
				return
			}
			t.Fatalf("%s exited with %d while waiting for %s:\n%s", p, p.code, what, Tail(p.Stderr.String(), 3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s after %v:\n%s", p, what, timeout, Tail(p.Stderr.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail returns the last n bytes of s, marked as cut when they are not all.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
