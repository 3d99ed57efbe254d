package brokertest_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestCluster_KillPausePartition exercises the three-node harness: a quorum
// queue survives its leader's crash, a stalled node and a cut-off node
// rejoin, and pause_minority stops the cut-off node serving clients.
func TestCluster_KillPausePartition(t *testing.T) {
	brokertest.SkipUnlessAllClusterTests(t)
	start := time.Now()
	c := brokertest.StartCluster(t, 3)
	t.Logf("timing: cluster of 3 started and healthy in %v", time.Since(start).Round(100*time.Millisecond))

	queue := brokertest.Name(t)
	ch := dial(t, c.Nodes[0].URL())
	if _, err := ch.QueueDeclare(queue, true /* durable */, false /* autoDelete */, false /* exclusive */, false, /* noWait */
		amqp091.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": 3}); err != nil {
		t.Fatalf("declare: %v", err)
	}
	publishConfirmed(t, ch, queue, 200)

	leader := c.LeaderOf(t, queue)
	t.Logf("leader of %s: %s", queue, leader.Name)
	killed := time.Now()
	leader.Kill(t)
	next := c.LeaderOf(t, queue)
	t.Logf("timing: new leader %s known %v after kill -9 of the old", next.Name, time.Since(killed).Round(10*time.Millisecond))
	if next == leader {
		t.Fatalf("leader still %s after it was killed", leader.Name)
	}
	other := c.Nodes[0]
	if other == leader {
		other = c.Nodes[1]
	}
	if got := consumeAll(t, other.URL(), queue, 200, 30*time.Second); got != 200 {
		t.Fatalf("consumed %d distinct messages from %s, want 200", got, other.Name)
	}
	restarted := time.Now()
	leader.Start(t)
	c.WaitHealthy(t, 90*time.Second)
	t.Logf("timing: killed node restarted and cluster healthy in %v", time.Since(restarted).Round(100*time.Millisecond))

	paused := c.Nodes[2]
	pausedAt := time.Now()
	paused.Pause(t)
	t.Logf("timing: majority saw paused %s down after %v", paused.Name, c.WaitNodeDown(t, paused, 60*time.Second).Round(100*time.Millisecond))
	for time.Since(pausedAt) < 15*time.Second {
		time.Sleep(100 * time.Millisecond) // hold the pause past 15 s, whatever detection took
	}
	paused.Resume(t)
	resumed := time.Now()
	c.Repair(t, paused, 30*time.Second)
	t.Logf("timing: paused %v; healthy %v after resume", time.Since(pausedAt).Round(100*time.Millisecond)-time.Since(resumed).Round(100*time.Millisecond), time.Since(resumed).Round(100*time.Millisecond))

	cut := c.Nodes[1]
	cutConn, err := amqp091.Dial(cut.URL())
	if err != nil {
		t.Fatalf("dial %s: %v", cut.Name, err)
	}
	defer cutConn.Close()
	closed := cutConn.NotifyClose(make(chan *amqp091.Error, 1))
	cutCh, err := cutConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cutCh.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	c.Partition(t, cut)
	t.Logf("timing: majority saw cut-off %s down after %v", cut.Name, c.WaitNodeDown(t, cut, 60*time.Second).Round(100*time.Millisecond))
	refused := waitRefused(t, cutCh, closed, queue, 60*time.Second)
	t.Logf("timing: client of cut-off node: %s, %v after the cut", refused, time.Since(cutAt).Round(100*time.Millisecond))
	healed := time.Now()
	c.Heal(t)
	c.Repair(t, cut, 30*time.Second)
	t.Logf("timing: healthy %v after heal", time.Since(healed).Round(100*time.Millisecond))
	t.Logf("timing: whole test %v", time.Since(start).Round(100*time.Millisecond))
}

func dial(t *testing.T, url string) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func publishConfirmed(t *testing.T, ch *amqp091.Channel, queue string, n int) {
	t.Helper()
	if err := ch.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	confs := make([]*amqp091.DeferredConfirmation, 0, n)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false /* mandatory */, false, /* immediate */
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		confs = append(confs, dc)
	}
	for i, dc := range confs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("message %d not confirmed: ack %v, %v", i, ok, err)
		}
	}
}

// consumeAll reads queue at url until want distinct bodies arrived or
// timeout passed, and returns how many distinct ones it got.
func consumeAll(t *testing.T, url, queue string, want int, timeout time.Duration) int {
	t.Helper()
	ch := dial(t, url)
	if err := ch.Qos(256, 0, false /* global */); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false /* autoAck */, false /* exclusive */, false /* noLocal */, false /* noWait */, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	seen := map[string]bool{}
	deadline := time.After(timeout)
	for len(seen) < want {
		select {
		case d, ok := <-ds:
			if !ok {
				return len(seen)
			}
			seen[string(d.Body)] = true
			_ = d.Ack(false /* multiple */)
		case <-deadline:
			return len(seen)
		}
	}
	return len(seen)
}

// waitRefused publishes on ch every second until the connection is closed
// or a publish stays unconfirmed for 5 s, and says which; it fails t after
// timeout.
func waitRefused(t *testing.T, ch *amqp091.Channel, closed <-chan *amqp091.Error, queue string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-closed:
			return fmt.Sprintf("connection closed (%v)", err)
		default:
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, false, false, /* mandatory, immediate */
			amqp091.Publishing{Body: []byte("during cut")})
		if err != nil {
			return fmt.Sprintf("publish refused (%v)", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := dc.WaitContext(ctx)
		cancel()
		switch {
		case err != nil:
			return fmt.Sprintf("publish unconfirmed for 5 s (%v)", err)
		case !ok:
			return "publish nacked"
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("a client of the cut-off node kept publishing with confirms for %v", timeout)
	return ""
}
