package redisbridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// killClients CLIENT KILLs every connection named name (the bridge's, by
// client_name in its URL) and returns how many it killed.
func killClients(t *testing.T, c *redis.Client, name string) int {
	t.Helper()
	ctx := context.Background()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		var id int64
		if _, err := fmt.Sscanf(line, "id=%d", &id); err != nil {
			t.Fatalf("client list line %q: %v", line, err)
		}
		if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
			n++
		}
	}
	return n
}

// TestPubSub_ConnectionKilled: Redis drops the subscriber's connection (a
// restart, a failover, CLIENT KILL). The bridge subscribes again, counts
// the reconnect, and relays what is published after it.
func TestPubSub_ConnectionKilled(t *testing.T) {
	t.Parallel()
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	pub := newGated()
	close(pub.open)
	name := strings.ReplaceAll(brokertest.Name(t), "-", "_")
	b := start(t, redisbridge.Config{URL: withQuery(redistest.URL(t), "client_name="+name), Pattern: prefix + "*"}, pub)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })
	if n := killClients(t, c, name); n == 0 {
		t.Fatal("no connection of the bridge to kill")
	}
	brokertest.Eventually(t, 10*time.Second, "subscribed again, the reconnect counted", func() bool {
		s := b.Stats()
		return s.Reconnects == 1 && s.Connected
	})
	// Subscribed again means Redis confirmed the PSUBSCRIBE: this message
	// reaches the new subscription.
	if err := c.Publish(t.Context(), prefix+"AfterTheCut", `{}`).Err(); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 10*time.Second, "the message after the cut published", func() bool { return b.Stats().Published == 1 })
}

// TestStream_ConnectionsKilledMidStream: every connection of the bridge is
// killed while entries are being read; every entry is published, and none
// is left pending.
func TestStream_ConnectionsKilledMidStream(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	ctx := t.Context()
	const total = 2000
	for i := 0; i < total; i += 100 {
		pipe := c.Pipeline()
		for j := range 100 {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", fmt.Sprintf(`{"aggregateId":"a%d"}`, (i+j)%7)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pub := newGated()
	name := strings.ReplaceAll(brokertest.Name(t), "-", "_")
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, URL: withQuery(redistest.URL(t), "client_name="+name),
		Stream: stream, Consumer: "c1", Window: 16}, pub)
	// 16 taken; 7 of them at the broker, one per aggregate, the rest behind them.
	brokertest.Eventually(t, 10*time.Second, "the window full", func() bool {
		busy, _, _ := pub.waiting()
		return b.Stats().InFlight == 16 && busy == 7
	})
	killed := killClients(t, c, name)
	close(pub.open)
	brokertest.Eventually(t, 60*time.Second, "every entry published and acked", func() bool {
		pend, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
		return err == nil && pend.Count == 0 && b.Stats().Published >= total
	})
	seen := map[string]int{}
	for _, ev := range pub.events() {
		seen[ev.ID]++
	}
	if len(seen) != total {
		t.Fatalf("%d distinct entries published, want %d", len(seen), total)
	}
	t.Logf("killed %d connections with 16 entries in flight: %d published, %d distinct, reconnects %d, redelivered %d",
		killed, len(pub.events()), len(seen), b.Stats().Reconnects, b.Stats().Redelivered)
}
