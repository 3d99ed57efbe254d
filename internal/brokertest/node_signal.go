package brokertest

import (
	"syscall"
	"testing"
)

// Pause stops the node's Erlang VM with SIGSTOP: it keeps its sockets but
// answers nothing, as a node stalled by the host (GC pause, swapped out, a
// frozen VM) would. Its peers declare it down after net_ticktime. Resume
// continues it; a paused node is still killed at test end.
func (n *Node) Pause(t testing.TB) {
	t.Helper()
	n.signal(t, syscall.SIGSTOP)
}

// Resume continues a node stopped by Pause (SIGCONT).
func (n *Node) Resume(t testing.TB) {
	t.Helper()
	n.signal(t, syscall.SIGCONT)
}

func (n *Node) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := n.pid()
	if pid == 0 {
		t.Fatalf("node %s has no pid file (not running?)", n.Name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %v to node %s (pid %d): %v", sig, n.Name, pid, err)
	}
}
