package natsbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/internal/proctest"
	"github.com/eventfleet/eventfleet/natsbridge"
)

var natsrelay = proctest.NewBinary("natsrelay", "github.com/eventfleet/eventfleet/natsbridge/internal/natsrelay")

// TestJetStream_BridgeKilledMidStream_NothingLost: a bridge process is
// SIGKILLed while it publishes a stream of 3000 messages; a second one
// takes over the durable consumer. Every message reaches the RabbitMQ queue
// at least once, with its stable id; the duplicates (published by the
// first, never acked) are counted by the second as redeliveries.
func TestJetStream_BridgeKilledMidStream_NothingLost(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	exchange, queue := topology(t, "Killed")

	const n = 3000
	want := map[string]bool{}
	created := streamCreated(t, js, stream)
	for i := range n {
		id := ""
		if i%3 == 0 {
			id = fmt.Sprintf("m-%d", i) // the publisher's own id, kept
		}
		if _, err := js.PublishAsync(root+".events.Killed", fmt.Appendf(nil, `{"aggregateId":"a-%d","i":%d}`, i%7, i),
			jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
		if id == "" {
			id = natsbridge.SeqID(stream, created, uint64(i+1))
		}
		want[id] = true
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not ack the test's publishes")
	}

	got := collect(t, queue)
	env := []string{"NATS_URL=" + natstest.URL(t), "NATS_SUBJECT=" + root + ".events.*", "NATS_STREAM=" + stream,
		"NATS_CONSUMER=" + consumer, "NATS_ACK_WAIT=2s", "PUBLISH_TIMEOUT=1s", "PUBLISH_WINDOW=16", "BATCH_DELAY=20ms",
		"AMQP_URL=" + brokertest.URL(t), "EXCHANGE=" + exchange}
	bin := natsrelay.Path(t)
	first := proctest.Start(t, bin, env)
	first.Poll(t, 30*time.Second, "ready", func() bool { return strings.Contains(first.Stdout.String(), "ready") })
	first.Poll(t, 30*time.Second, "400 messages in the queue", func() bool { return got.distinct() >= 400 })
	first.Kill(t)
	atKill := got.distinct()
	if atKill >= n {
		t.Fatalf("all %d messages were through before the kill: not mid-stream", atKill)
	}

	second := proctest.Start(t, bin, env)
	second.Poll(t, 30*time.Second, "every message in the queue", func() bool { return got.distinct() == n })
	second.Signal(t, syscall.SIGTERM)
	if code, ok := second.Wait(15 * time.Second); !ok || code != 0 {
		t.Fatalf("second bridge: exit %d (exited %v)", code, ok)
	}
	var st natsbridge.Stats
	line := second.Stdout.String()
	if i := strings.Index(line, "stats "); i < 0 || json.Unmarshal([]byte(strings.TrimSpace(line[i+6:])), &st) != nil {
		t.Fatalf("no stats from the second bridge: %q", line)
	}
	ids, total := got.snapshot()
	for id := range want {
		if ids[id] == 0 {
			t.Fatalf("message %s lost", id)
		}
	}
	for id := range ids {
		if !want[id] {
			t.Fatalf("unexpected id %s", id)
		}
	}
	dups := total - len(ids)
	t.Logf("killed with %d of %d through; after the second bridge: %d deliveries, %d duplicates; second bridge stats %+v",
		atKill, n, total, dups, st)
	if int64(dups) > st.Redelivered {
		t.Fatalf("%d duplicates but only %d redeliveries counted", dups, st.Redelivered)
	}
	if st.Redelivered == 0 {
		t.Fatal("no redelivery counted: the killed bridge's unacked messages should have come again")
	}
	if !strings.Contains(second.Stderr.String(), "message delivered again") {
		t.Fatal("redeliveries not logged")
	}
}

// topology declares a fresh exchange as the Publisher does and a queue
// bound to types, deleted when t ends.
func topology(t *testing.T, types ...string) (exchange, queue string) {
	t.Helper()
	exchange = brokertest.Name(t)
	queue = exchange + "-q"
	brokertest.Cleanup(t, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	ch := brokertest.Channel(t)
	if err := ch.ExchangeDeclare(exchange, "topic",
		true,  // durable: as the Publisher declares it
		false, // autoDelete
		false, // internal
		false, // noWait
		nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil); err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		if err := ch.QueueBind(queue, typ, exchange, false /* noWait */, nil); err != nil {
			t.Fatal(err)
		}
	}
	return exchange, queue
}

// collected counts the ids read from a queue while the test runs.
type collected struct {
	mu    sync.Mutex
	ids   map[string]int
	total int
}

func (c *collected) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func (c *collected) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make(map[string]int, len(c.ids))
	for k, v := range c.ids {
		ids[k] = v
	}
	return ids, c.total
}

// collect consumes queue in the background until t ends, checking each
// message's type and aggregate.
func collect(t *testing.T, queue string) *collected {
	t.Helper()
	ch := brokertest.Channel(t)
	ds, err := ch.Consume(queue, "", true /* autoAck */, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &collected{ids: map[string]int{}}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(done)
		for {
			select {
			case d, ok := <-ds:
				if !ok {
					return
				}
				agg, _ := d.Headers[amqp.HeaderAggregateID].(string)
				if d.Type != "Killed" || !strings.HasPrefix(agg, "a-") {
					t.Errorf("message %s: type %q aggregate %q", d.MessageId, d.Type, agg)
				}
				c.mu.Lock()
				c.ids[d.MessageId]++
				c.total++
				c.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}
