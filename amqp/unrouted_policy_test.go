package amqp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/metrics"
)

func TestUnroutedPolicy_Args(t *testing.T) {
	t.Parallel()
	got := strings.Join(amqp.NewUnroutedPolicy("domain_events").CtlArgs(), " ")
	want := `set_policy domain_events.unrouted ^domain_events\.unrouted$ ` +
		`{"max-length":100000,"max-length-bytes":268435456,"overflow":"reject-publish"} --apply-to queues --priority 10`
	if got != want {
		t.Errorf("CtlArgs:\n got %s\nwant %s", got, want)
	}
}

// TestPublisher_UnroutedQueueFullFailsThePublish bounds an existing unrouted
// queue that already holds events by policy, as an operator of an existing
// deployment would, on a private node (policies are never set on the shared
// broker): unroutable events beyond the bound fail loudly, nothing kept is
// dropped, and routable events are not affected.
func TestPublisher_UnroutedQueueFullFailsThePublish(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	const exchange, bound = "domain_events", 5
	b := &bundle{url: node.URL(), exchange: exchange, log: testLogger(t)}
	m := metrics.New()
	p := b.publisher(t, amqp.PublisherConfig{Metrics: m})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const before = 2 // kept while the queue had no bound
	for i := range before {
		if err := p.Publish(ctx, ev("NobodyListens", "", i)); err != nil {
			t.Fatal(err)
		}
	}

	// An operator's catch-all policy at the usual priority 0 must not win.
	node.Ctl(t, "set_policy", "catch-all", ".*", `{"max-length":1000}`, "--apply-to", "queues", "--priority", "0")
	// The operator's one command: no re-declare, no restart, nothing lost.
	pol := amqp.NewUnroutedPolicy(exchange)
	pol.MaxLen = bound
	node.Ctl(t, pol.CtlArgs()...)
	ch := brokertest.ChannelAt(t, node.URL())
	tap := "routed-tap"
	if _, err := ch.QueueDeclare(tap, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(tap, "Routed", exchange, false, nil); err != nil {
		t.Fatal(err)
	}

	// Measured on RabbitMQ 3.10.8: a quorum queue checks the bound after an
	// enqueue, so it takes the one message that brings it past max-length
	// and refuses from the next on. Allow either count; the queue must hold
	// exactly what was confirmed.
	kept := before
	var err error
	var took time.Duration
	for i := before; i < bound+2; i++ {
		start := time.Now()
		err = p.Publish(ctx, ev("NobodyListens", "", i))
		took = time.Since(start)
		if err != nil {
			break
		}
		kept++
	}
	t.Logf("%d unroutable events kept with max-length %d; the next publish failed after %v: %v", kept, bound, took, err)
	if kept < bound || kept > bound+1 {
		t.Fatalf("%d unroutable events kept with max-length %d, want %d (or %d, the quorum queue's one past the bound)", kept, bound, bound, bound+1)
	}
	if !errors.Is(err, amqp.ErrNacked) || !errors.Is(err, amqp.ErrUnroutedRefused) {
		t.Fatalf("publish beyond the bound = %v, want ErrNacked and ErrUnroutedRefused", err)
	}
	for _, s := range []string{`"domain_events.unrouted"`, "full", "worker dlq --unrouted"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if err := p.Publish(ctx, ev("NobodyListens", "", 99)); !errors.Is(err, amqp.ErrNacked) {
		t.Errorf("a second publish beyond the bound = %v, want ErrNacked: the queue stays full", err)
	}
	if got := p.Unrouted(); got != int64(kept) {
		t.Errorf("Unrouted() = %d, want %d (the confirmed copies only)", got, kept)
	}
	if got := metricValue(t, m, "eventfleet_published_total", map[string]string{"type": "NobodyListens", "outcome": "nacked"}); got != 2 {
		t.Errorf("published_total{NobodyListens,nacked} = %v, want 2", got)
	}

	if err := p.Publish(ctx, ev("Routed", "", 0)); err != nil {
		t.Fatalf("routable publish with the unrouted queue full: %v", err)
	}
	for name, want := range map[string]int{amqp.UnroutedQueue(exchange): kept, tap: 1} {
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		if err != nil || q.Messages != want {
			t.Errorf("queue %s holds %d messages (%v), want %d", name, q.Messages, err, want)
		}
	}
}
