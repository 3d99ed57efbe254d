package brokertest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Partition cuts node n off from every other node of the cluster: all
// Erlang distribution traffic to and from it is dropped, AMQP clients
// (127.0.0.1 to the AMQP ports) are not touched. Its rules live in an
// iptables chain of this cluster's own, jumped to from INPUT and OUTPUT
// (loopback traffic crosses both); Heal and the end of the test remove them,
// and a reaper removes them if the test binary dies.
//
// Distribution from n leaves from its own source address (StartCluster), so
// the rules catch every link whichever side opened it: from or to n's source
// address, and to or from n's distribution port. The latter also cuts
// rabbitmqctl to n (the CLI talks distribution), so n.Ctl fails during a cut.
// It skips the test where iptables is missing or not usable (not root).
func (c *Cluster) Partition(t testing.TB, n *Node) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("partition test needs iptables (run as root); CI installs it")
	}
	if err := c.ensureChain(); err != nil {
		t.Skipf("partition test needs a usable iptables (run as root): %v", err)
	}
	src := c.sources[c.index(n)]
	port := strconv.Itoa(n.DistPort)
	for _, rule := range [][]string{
		{"-s", src},
		{"-d", src},
		{"--dport", port},
		{"--sport", port},
	} {
		args := append([]string{"-A", c.chain, "-p", "tcp"}, rule...)
		if err := iptables(append(args, "-j", "DROP")...); err != nil {
			t.Fatalf("partition %s: %v", n.Name, err)
		}
	}
}

// Heal removes every cut Partition made; the chain stays (empty) until the
// test ends.
func (c *Cluster) Heal(t testing.TB) {
	t.Helper()
	if err := iptables("-F", c.chain); err != nil && c.chainExists() {
		t.Fatalf("heal: %v", err)
	}
}

// ensureChain creates the chain with its jumps and the reaper that removes
// them if the test binary dies, unless the chain exists.
func (c *Cluster) ensureChain() error {
	if c.chainExists() {
		return nil
	}
	if err := iptables("-N", c.chain); err != nil {
		return err
	}
	reapChainWhenGone(c.chain)
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		if err := iptables("-I", hook, "-j", c.chain); err != nil {
			c.removeChain()
			return err
		}
	}
	return nil
}

func (c *Cluster) chainExists() bool { return iptables("-S", c.chain) == nil }

// removeChain deletes the jumps and the chain; each step may find nothing.
func (c *Cluster) removeChain() {
	if !c.chainExists() {
		return
	}
	_ = iptables("-D", "INPUT", "-j", c.chain)
	_ = iptables("-D", "OUTPUT", "-j", c.chain)
	_ = iptables("-F", c.chain)
	_ = iptables("-X", c.chain)
}

// iptables runs iptables, waiting for the xtables lock (other tests may
// hold it).
func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// reapChainWhenGone starts a watcher, in a session of its own, that removes
// chain and its jumps as soon as this test process is gone; once the chain is
// removed normally the watcher just ends. Left behind, the rules would cut
// whatever later gets the node's ports.
func reapChainWhenGone(chain string) {
	script := `while kill -0 "$1" 2>/dev/null && iptables -w 5 -S "$2" >/dev/null 2>&1; do sleep 1; done
iptables -w 5 -S "$2" >/dev/null 2>&1 || exit 0
iptables -w 5 -D INPUT -j "$2"
iptables -w 5 -D OUTPUT -j "$2"
iptables -w 5 -F "$2"
iptables -w 5 -X "$2"`
	cmd := exec.Command("sh", "-c", "("+script+") >/dev/null 2>&1 &", "reaper", strconv.Itoa(os.Getpid()), chain)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	_ = cmd.Run()
}
