package brokertest

import (
	"fmt"
	"testing"
	"time"
)

// HealthyWithin waits up to timeout for the cluster to be whole, as
// WaitHealthy does, and returns "" when it is, or what is still missing,
// without failing the test: for a test that repairs the cluster itself when
// the broker does not.
func (c *Cluster) HealthyWithin(timeout time.Duration) (problem string) {
	deadline := time.Now().Add(timeout)
	for {
		if problem = c.unhealthy(); problem == "" || time.Now().After(deadline) {
			return problem
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Repair gives the cluster wait to become whole after n was resumed or
// healed, then restarts n, as an operator would, and waits up to 3 minutes
// for the cluster to be whole. A partition that a node finds only after
// the fact (it was suspended past net_ticktime) is recorded on both sides,
// and pause_minority does not always heal it (measured on 3.10.8: still
// split minutes after a 15 to 20 s SIGSTOP, docs/cluster.md). It says in
// t's log which of the two happened.
func (c *Cluster) Repair(t testing.TB, n *Node, wait time.Duration) {
	t.Helper()
	began := time.Now()
	problem := c.HealthyWithin(wait)
	if problem == "" {
		t.Logf("the cluster healed itself %v after %s came back", time.Since(began).Round(100*time.Millisecond), n.Name)
		return
	}
	t.Logf("not whole %v after %s came back (%s): restarting it", wait, n.Name, problem)
	n.Kill(t)
	n.Start(t)
	c.WaitHealthy(t, 3*time.Minute)
}

// Queues is rabbitmqctl list_queues (name, type, messages, ready, unacked,
// leader) from the first node that answers, for a failing test's log: where
// the messages it misses are. A quorum queue's messages beyond ready and
// unacked are dead letters it has not handed on yet. It never fails t.
func (c *Cluster) Queues() string {
	var last error
	for _, n := range c.Nodes {
		out, err := n.ctlOut(ctlTimeout, "list_queues", "-p", "/", "name", "type", "messages", "messages_ready", "messages_unacknowledged", "leader")
		if err == nil {
			return out
		}
		last = err
	}
	return fmt.Sprintf("no node listed its queues: %v", last)
}
