package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Node is a private RabbitMQ node for fault tests: its own node name, ports and
// data directory, started from the RabbitMQ installed on the machine, so a test
// can kill it, restart it or raise alarms without touching the shared broker.
type Node struct {
	Name string // Erlang node name, e.g. ef-1a2b@localhost
	Port int    // AMQP port
	// TLSPort is the AMQP-over-TLS port (amqps), with WithTLS; else 0.
	TLSPort int
	// DistPort is the Erlang distribution port (never the shared broker's 25672).
	DistPort int
	dir      string
	env      []string
}

// StartNode starts a private node and stops it (and removes its data) when the
// test ends, also when the test fails. It skips the test where no
// rabbitmq-server is installed. Options add configuration (WithConf) or a
// TLS listener (WithTLS).
func StartNode(t testing.TB, opts ...NodeOption) *Node {
	t.Helper()
	skipWithoutServer(t)
	n := prepareNode(t, "ef-"+randomHex(3)+"@localhost", opts...)
	t.Cleanup(func() {
		n.stop()
		_ = os.RemoveAll(n.dir)
	})
	n.Start(t)
	return n
}

// skipWithoutServer skips fault tests that start private nodes where they
// cannot or should not run.
func skipWithoutServer(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: starts a private RabbitMQ node; skipped with -short")
	}
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		t.Skip("fault test needs rabbitmq-server installed to start a private node")
	}
}

func randomHex(bytes int) string {
	b := make([]byte, bytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// prepareNode writes a node's directory (configuration, plugins, ports) and
// starts its reaper, but does not start it: a cluster starts its nodes
// together. The caller stops the node and removes n.dir at test end.
func prepareNode(t testing.TB, name string, opts ...NodeOption) *Node {
	t.Helper()
	dir, err := os.MkdirTemp("", "eventfleet-node-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Name: name, Port: FreePort(t), DistPort: FreePort(t), dir: dir}
	setup := nodeSetup{files: map[string]string{}}
	for _, opt := range opts {
		opt(&setup)
	}
	if setup.tls {
		n.TLSPort = FreePort(t)
	}
	extra, advanced, err := setup.write(dir, n.TLSPort)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatal(err)
	}
	files := map[string]string{
		"enabled_plugins": "[].\n",
		// Let guest connect from 127.0.0.1 as well as ::1/localhost.
		"rabbitmq.conf":   "loopback_users = none\n" + extra,
		"advanced.config": advanced,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			_ = os.RemoveAll(dir)
			t.Fatal(err)
		}
	}
	// The server drops to the rabbitmq user: it must own its directory.
	if u, err := user.Lookup("rabbitmq"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
	}
	_ = os.Chmod(dir, 0o777)
	n.env = append(os.Environ(),
		"RABBITMQ_NODENAME="+n.Name,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.DistPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
	)
	n.env = append(n.env, setup.env...)
	reapWhenGone(dir)
	return n
}

// reapWhenGone starts a watcher, in a session of its own, that kills the
// node whose data is in dir and removes dir as soon as this test process is
// gone. A node is a detached server: a test binary that dies without its
// cleanups (a -timeout panic, SIGKILL) would otherwise leave it running.
// After a normal cleanup dir is gone and the watcher just ends.
func reapWhenGone(dir string) {
	// The node's processes are found by their environment, which names
	// dir: there may be no pid file yet (the node was still booting).
	script := `while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
[ -d "$2" ] || exit 0
for p in /proc/[0-9]*; do
  grep -qsF "RABBITMQ_MNESIA_BASE=$2/mnesia" "$p/environ" && kill -9 "${p#/proc/}" 2>/dev/null
done
rm -rf "$2"`
	// The shell starts the watcher in the background and exits at once, so
	// nothing here waits for it (goleak) and init reaps it.
	cmd := exec.Command("sh", "-c", "("+script+") >/dev/null 2>&1 &", "reaper", strconv.Itoa(os.Getpid()), dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	_ = cmd.Run()
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago, for a
// private server a test starts.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URL is the node's AMQP URL.
func (n *Node) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.Port) }

// TLSURL is the node's amqps:// URL on host (e.g. "127.0.0.1" or
// "localhost"), with no TLS parameters; it needs WithTLS.
func (n *Node) TLSURL(host string) string {
	return fmt.Sprintf("amqps://guest:guest@%s:%d/", host, n.TLSPort)
}

// Start starts the node (again, on the same data) and waits until it serves.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.launch(); err != nil {
		t.Fatal(err)
	}
	if err := n.awaitStartup(90 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// launch starts the server detached and returns at once, so that several
// nodes can boot at the same time.
func (n *Node) launch() error {
	cmd := exec.Command("rabbitmq-server", "-detached")
	cmd.Env = n.env
	// The node's own directory: erl arguments with brackets pass through
	// unquoted shell words, which must not glob-match a file here.
	cmd.Dir = n.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start node %s: %v\n%s", n.Name, err, out)
	}
	return nil
}

// awaitStartup waits until the node has booted and its AMQP port accepts.
func (n *Node) awaitStartup(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := n.ctl("await_startup"); err == nil {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.Port), time.Second); err == nil {
				_ = c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(n.dir, "log", n.Name+".log"))
			return fmt.Errorf("node %s did not start within %v; log tail:\n%s", n.Name, timeout, tailBytes(log, 2000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Kill kills the node with SIGKILL, as a crash would, and waits until it is gone.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	pid := n.pid()
	if pid == 0 {
		t.Fatalf("node %s has no pid file", n.Name)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 200 {
		if syscall.Kill(pid, 0) != nil {
			_ = os.Remove(filepath.Join(n.dir, "pid"))
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("node %s (pid %d) still alive after SIGKILL", n.Name, pid)
}

// StopClean stops the node the orderly way (rabbitmqctl stop) and waits until
// its process is gone.
func (n *Node) StopClean(t testing.TB) {
	t.Helper()
	if err := n.ctl("stop", filepath.Join(n.dir, "pid")); err != nil {
		t.Fatalf("stop node %s: %v", n.Name, err)
	}
	_ = os.Remove(filepath.Join(n.dir, "pid"))
}

// Ctl runs rabbitmqctl against the node, e.g. Ctl(t, "set_vm_memory_high_watermark", "0.0001").
func (n *Node) Ctl(t testing.TB, args ...string) {
	t.Helper()
	if err := n.ctl(args...); err != nil {
		t.Fatalf("rabbitmqctl %s: %v", strings.Join(args, " "), err)
	}
}

func (n *Node) ctl(args ...string) error {
	cmd := exec.Command("rabbitmqctl", append([]string{"-n", n.Name, "-q"}, args...)...)
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Node) pid() int {
	b, err := os.ReadFile(filepath.Join(n.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stop ends the node whatever its state; no process may outlive the test.
func (n *Node) stop() {
	pid := n.pid()
	_ = n.ctl("stop")
	if pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
