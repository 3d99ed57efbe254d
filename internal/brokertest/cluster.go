package brokertest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is a private RabbitMQ cluster of nodes on this machine, for tests
// that kill, pause or cut off one node while the others carry on. Every node
// runs with cluster_partition_handling = pause_minority and net_ticktime =
// 10, so a node cut off from the rest is declared down after 10–20 s and
// stops serving (its AMQP listener closes) until it sees a majority again.
type Cluster struct {
	Nodes []*Node
	// chain is the iptables chain Partition adds its rules to (created on
	// the first Partition, removed at test end).
	chain string
	// sources[i] is the loopback address node i's outgoing distribution
	// connections leave from: random per cluster, so a Partition in one
	// cluster never cuts a node of another running at the same time.
	sources []string
}

// clusterTicktime is net_ticktime in seconds: a silent peer is declared down
// after 0.75–1.25 of it. The default 60 would leave a 30 s cut undetected.
const clusterTicktime = 10

// DeadLetterConfirmTimeoutMS is the cluster's
// dead_letter_worker_publisher_confirm_timeout, in milliseconds (see
// StartCluster).
const DeadLetterConfirmTimeoutMS = 30000

// StartCluster starts n private nodes clustered together, each with opts,
// waits until all are running and see each other, and stops them all
// (removing their data) at test end, also when the test fails or its binary
// dies (a reaper per node). It skips like StartNode.
//
// The nodes form the cluster themselves (classic_config peer discovery,
// every node lists all the others) and boot at the same time.
func StartCluster(t testing.TB, n int, opts ...NodeOption) *Cluster {
	t.Helper()
	skipWithoutServer(t)
	if n < 1 || n > 200 {
		t.Fatalf("StartCluster: %d nodes; want 1 to 200", n)
	}
	clusterLock(t)
	prefix := "efc-" + randomHex(3) + "-"
	names := make([]string, n)
	peers := []string{"cluster_formation.peer_discovery_backend = classic_config"}
	for i := range names {
		names[i] = prefix + strconv.Itoa(i+1) + "@localhost"
		peers = append(peers, fmt.Sprintf("cluster_formation.classic_config.nodes.%d = %s", i+1, names[i]))
	}
	c := &Cluster{chain: "EF-" + randomHex(4)}
	net := make([]byte, 2)
	_, _ = rand.Read(net)
	for i := range names {
		c.sources = append(c.sources, fmt.Sprintf("127.%d.%d.%d", net[0], net[1], 11+i))
	}
	for i, name := range names {
		nodeOpts := append(slices.Clone(opts),
			WithConf(append(peers,
				"cluster_partition_handling = pause_minority",
				"net_ticktime = "+strconv.Itoa(clusterTicktime),
			)...),
			// A quorum queue's at-least-once dead-lettering (our retry
			// queues' way back to the app's queue) sends a message again
			// only after this long without the target's confirm: 180 s by
			// default, so a retried event that met a leader's death
			// waited 3 minutes (measured). docs/cluster.md recommends 30 s.
			WithAdvanced("{dead_letter_worker_publisher_confirm_timeout, "+strconv.Itoa(DeadLetterConfirmTimeoutMS)+"}"),
			withEnv(
				// Outgoing distribution connections leave from an address of
				// this node's own, so Partition can cut all of its links (each
				// pair of nodes shares one connection, opened by either side).
				// The node still listens on every address.
				"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_connect_options [{ip,{"+strings.ReplaceAll(c.sources[i], ".", ",")+"}}]",
			),
		)
		node := prepareNode(t, name, nodeOpts...)
		// /etc/rabbitmq/rabbitmq-env.conf names the shared broker's node;
		// an empty env file keeps it out of ours.
		envFile := filepath.Join(node.dir, "rabbitmq-env.conf")
		if err := os.WriteFile(envFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		node.env = append(node.env, "RABBITMQ_CONF_ENV_FILE="+envFile)
		c.Nodes = append(c.Nodes, node)
	}
	// Registered after the nodes' reapers and before anything the test
	// adds, so it runs after the test's own cleanups.
	t.Cleanup(c.stop)
	for _, node := range c.Nodes {
		if err := node.launch(); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = node.awaitStartup(120 * time.Second)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, 60*time.Second)
	// advanced.config is easy to get silently wrong: check it took.
	want := fmt.Sprintf("{ok,%d}", DeadLetterConfirmTimeoutMS)
	if got, err := c.Nodes[0].ctlOut(ctlTimeout, "eval", "application:get_env(rabbit, dead_letter_worker_publisher_confirm_timeout)."); err != nil || strings.TrimSpace(got) != want {
		t.Fatalf("dead_letter_worker_publisher_confirm_timeout on %s: %q, %v; want %s", c.Nodes[0].Name, got, err, want)
	}
	return c
}

// stop kills every node at once (their data is thrown away, so there is
// nothing to stop cleanly) and removes their directories and the
// partition chain.
func (c *Cluster) stop() {
	c.removeChain()
	for _, n := range c.Nodes {
		if pid := n.pid(); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, n := range c.Nodes {
		if pid := n.pid(); pid != 0 {
			for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(25 * time.Millisecond)
			}
		}
		_ = os.RemoveAll(n.dir)
	}
}

// URLs is each node's AMQP URL, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return urls
}

// URLList is URLs joined with commas, as AMQP_URL takes a list.
func (c *Cluster) URLList() string { return strings.Join(c.URLs(), ",") }

// Node is the node with Erlang node name name (as list_queues reports a
// leader), or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (c *Cluster) index(n *Node) int {
	i := slices.Index(c.Nodes, n)
	if i < 0 {
		panic(fmt.Sprintf("brokertest: node %s is not in this cluster", n.Name))
	}
	return i
}

// clusterStatus is the part of `rabbitmqctl cluster_status --formatter
// json` the helpers read.
type clusterStatus struct {
	RunningNodes []string        `json:"running_nodes"`
	Partitions   json.RawMessage `json:"partitions"`
}

// status asks n for its view of the cluster.
func (n *Node) status() (clusterStatus, error) {
	var s clusterStatus
	out, err := n.ctlOut(ctlTimeout, "cluster_status", "--formatter", "json")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("cluster_status of %s: %v: %q", n.Name, err, out)
	}
	return s, nil
}

// partitioned reports whether s lists any partition.
func (s clusterStatus) partitioned() bool {
	p := strings.TrimSpace(string(s.Partitions))
	return p != "" && p != "{}" && p != "[]" && p != "null"
}

// WaitHealthy waits until every node runs and sees every node running, with
// no partition recorded; it fails t after timeout, saying what was missing.
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	if problem := c.HealthyWithin(timeout); problem != "" {
		t.Fatalf("cluster not healthy after %v: %s", timeout, problem)
	}
}

// unhealthy says what keeps the cluster from being whole, or "".
func (c *Cluster) unhealthy() string {
	for _, n := range c.Nodes {
		s, err := n.status()
		if err != nil {
			return err.Error()
		}
		for _, m := range c.Nodes {
			if !slices.Contains(s.RunningNodes, m.Name) {
				return fmt.Sprintf("%s does not see %s running (running: %v)", n.Name, m.Name, s.RunningNodes)
			}
		}
		if s.partitioned() {
			return fmt.Sprintf("%s reports partitions %s", n.Name, s.Partitions)
		}
	}
	return ""
}

// WaitNodeDown waits until a majority of the cluster (nodes other than n,
// running) reports n not running, and returns how long that
// took; it fails t after timeout.
func (c *Cluster) WaitNodeDown(t testing.TB, n *Node, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		agree := 0 // running nodes other than n that see n down
		for _, m := range c.Nodes {
			if m == n {
				continue // it may be paused or cut off: never asked
			}
			s, err := m.status()
			if err == nil && slices.Contains(s.RunningNodes, m.Name) && !slices.Contains(s.RunningNodes, n.Name) {
				agree++
			}
		}
		if 2*agree > len(c.Nodes) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("no majority of the cluster saw %s down within %v", n.Name, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// LeaderOf is the node leading quorum queue queue (vhost "/"), as reported
// by a node that runs and sees a majority running, and only a leader that
// node sees running. It polls until one is known and fails t after 30 s.
func (c *Cluster) LeaderOf(t testing.TB, queue string) *Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		n, err := c.leaderOf(queue)
		if err == nil {
			return n
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no leader known for quorum queue %q within 30s: %v", queue, last)
	return nil
}

func (c *Cluster) leaderOf(queue string) (*Node, error) {
	var last error = errNoMajority
	for _, m := range c.Nodes {
		s, err := m.status()
		if err != nil {
			last = err
			continue
		}
		if !slices.Contains(s.RunningNodes, m.Name) || len(s.RunningNodes) <= len(c.Nodes)/2 {
			continue
		}
		out, err := m.ctlOut(ctlTimeout, "list_queues", "-p", "/", "name", "leader", "--formatter", "json")
		if err != nil {
			last = err
			continue
		}
		var qs []struct {
			Name   string `json:"name"`
			Leader string `json:"leader"`
		}
		if err := json.Unmarshal([]byte(out), &qs); err != nil {
			last = fmt.Errorf("list_queues on %s: %v: %q", m.Name, err, out)
			continue
		}
		for _, q := range qs {
			if q.Name != queue {
				continue
			}
			if l := c.Node(q.Leader); l != nil && slices.Contains(s.RunningNodes, l.Name) {
				return l, nil
			}
			last = fmt.Errorf("%s reports leader %q, not a running node of this cluster", m.Name, q.Leader)
		}
	}
	return nil, last
}
