package redisbridge_test

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// The original design's publisher: redis.publish('events:<EventName>',
// JSON.stringify({...event, aggregateId})). Its message reaches a queue
// bound to the type, with the type, the aggregate and a fresh UUIDv7 id.
func TestPubSub_OriginalPublisherReachesTheQueue(t *testing.T) {
	t.Parallel()
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	p, ch, queue := broker(t, "CardAddedToLibraryEvent")
	b := start(t, redisbridge.Config{Pattern: prefix + "*"}, p)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })

	body := `{"cardId":"c-1","libraryId":"lib-1","aggregateId":"lib-1"}`
	if err := c.Publish(t.Context(), prefix+"CardAddedToLibraryEvent", body).Err(); err != nil {
		t.Fatal(err)
	}
	d := receive(t, ch, queue)
	if d.RoutingKey != "CardAddedToLibraryEvent" || d.Type != "CardAddedToLibraryEvent" || string(d.Body) != body {
		t.Fatalf("delivered key %q type %q body %s", d.RoutingKey, d.Type, d.Body)
	}
	if got, _ := d.Headers[amqp.HeaderAggregateID].(string); got != "lib-1" {
		t.Fatalf("aggregate_id header %q, want lib-1", got)
	}
	if got, _ := d.Headers[amqp.HeaderBridgedFrom].(string); got != "redis:"+prefix+"CardAddedToLibraryEvent" {
		t.Fatalf("%s header %q, want redis:<channel>", amqp.HeaderBridgedFrom, got)
	}
	if len(d.MessageId) != 36 || d.MessageId[14] != '7' {
		t.Fatalf("message_id %q, want a UUIDv7", d.MessageId)
	}
	brokertest.Eventually(t, 10*time.Second, "published counted", func() bool { return b.Stats().Published == 1 })
}

// A message that cannot be an event is counted and skipped; the next one
// goes through.
func TestPubSub_RejectsWhatCannotBeAnEvent(t *testing.T) {
	t.Parallel()
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Pattern: prefix + "*"}, pub)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })
	for _, m := range [][2]string{{"Bad*Name", `{}`}, {"X", `not json`}, {"X", `{"aggregateId":"a"}`}} {
		if err := c.Publish(t.Context(), prefix+m[0], m[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	brokertest.Eventually(t, 10*time.Second, "2 rejected, 1 published", func() bool {
		s := b.Stats()
		return s.Rejected == 2 && s.Published == 1
	})
}

// TestPubSub_BurstFasterThanTheBroker: a burst far larger than the window
// while the broker takes nothing. The bridge holds at most Window messages,
// its memory stays flat, and Redis, whose output buffer for the bridge
// fills, cuts it off (client-output-buffer-limit pubsub, 32 MiB hard by
// default); the bridge reconnects and counts it: what Redis dropped is the
// at-most-once loss the docs describe. Not parallel: the process's RSS is
// measured.
func TestPubSub_BurstFasterThanTheBroker(t *testing.T) {
	const (
		window = 64
		count  = 100000
		size   = 1024 // bytes per body: 98 MB in all, well beyond Redis's 32 MiB cut-off and the sockets' buffers
	)
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	pub := newGated()
	// Named, so that the test sees when Redis cuts the connection off.
	name := strings.ReplaceAll(brokertest.Name(t), "-", "_")
	b := start(t, redisbridge.Config{URL: withQuery(redistest.URL(t), "client_name="+name), Pattern: prefix + "*", Window: window}, pub)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })

	runtime.GC()
	before := rss(t)
	body := `{"aggregateId":null,"pad":"` + strings.Repeat("x", size-30) + `"}`
	ctx := context.Background()
	for sent := 0; sent < count; sent += 1000 {
		pipe := c.Pipeline()
		for range 1000 {
			pipe.Publish(ctx, prefix+"BurstEvent", body)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	brokertest.Eventually(t, 30*time.Second, "the window full at the stalled broker", func() bool {
		busy, _, _ := pub.waiting()
		return busy == window
	})
	brokertest.Eventually(t, 60*time.Second, "Redis cutting the slow bridge off", func() bool {
		list, err := c.ClientList(ctx).Result()
		return err == nil && !strings.Contains(list, "name="+name+" ")
	})
	_, peak, _ := pub.waiting()
	peakRSS := hwm(t)
	after := rss(t)
	s := b.Stats()
	t.Logf("burst of %d × %d B (%d MB) with the broker stalled, window %d: peak %d publishes waiting, %d in flight; RSS %d MB before, %d MB after, peak %d MB",
		count, size, count*size>>20, window, peak, s.InFlight, before>>20, after>>20, peakRSS>>20)
	if peak > window || s.InFlight > window {
		t.Errorf("peak %d publishes, %d in flight: more than the window %d", peak, s.InFlight, window)
	}
	if grew := after - before; grew > 32<<20 {
		t.Errorf("RSS grew by %d MB under the burst: the bridge buffers", grew>>20)
	}
	close(pub.open)
	brokertest.Eventually(t, 30*time.Second, "the bridge reconnected and counted it", func() bool {
		s := b.Stats()
		return s.Reconnects >= 1 && s.Connected && s.InFlight == 0
	})
	_, _, got := pub.waiting()
	t.Logf("published %d of %d after the broker came back, reconnects %d: the rest were lost to Redis's cut-off (at most once)", got, count, b.Stats().Reconnects)
}

// withQuery adds a query parameter to a URL.
func withQuery(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// rss and hwm are this process's resident set now and at its peak, in
// bytes (Linux).
func rss(t *testing.T) int64 { return procStatus(t, "VmRSS:") }
func hwm(t *testing.T) int64 { return procStatus(t, "VmHWM:") }

func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// A subscribed connection that goes silent (a proxy that stops
// forwarding: no FIN, no RST, the pings are written without error) is
// taken for dead after 3 × PingInterval without an answer: the bridge says
// it is not connected (so /readyz is unready), and once the path works
// again it subscribes anew, counts a reconnect and relays.
func TestPubSub_HalfOpenConnectionIsDetected(t *testing.T) {
	t.Parallel()
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	proxy := newFreezeProxy(t, redisAddr(t))
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{URL: proxy.URL(), Pattern: prefix + "*", PingInterval: 100 * time.Millisecond}, pub)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })

	proxy.setFrozen(true)
	brokertest.Eventually(t, 10*time.Second, "the silent connection taken for dead", func() bool {
		err := b.LastError()
		return !b.Stats().Connected && err != nil && strings.Contains(err.Error(), "no answer")
	})
	proxy.setFrozen(false)
	brokertest.Eventually(t, 20*time.Second, "subscribed again, a reconnect counted", func() bool {
		s := b.Stats()
		return s.Connected && s.Reconnects >= 1
	})
	brokertest.Eventually(t, 10*time.Second, "a message relayed after the reconnect", func() bool {
		if err := c.Publish(t.Context(), prefix+"T", `{}`).Err(); err != nil {
			t.Fatal(err)
		}
		return b.Stats().Published >= 1
	})
}

// lockedBuffer is a log sink goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A flood of rejected messages on very long channels is counted in full
// but logged at most once a second, each line naming the channel cut to
// 64 bytes (with its length) and how many were not logged.
func TestPubSub_RejectedFloodLogsShortLines(t *testing.T) {
	t.Parallel()
	prefix := "t-" + brokertest.Name(t) + ":"
	c := redistest.Client(t)
	var logs lockedBuffer
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Pattern: prefix + "*", Logger: slog.New(slog.NewTextHandler(&logs, nil))}, pub)
	brokertest.Eventually(t, 10*time.Second, "subscribed", func() bool { return b.Stats().Connected })
	long := prefix + strings.Repeat("x", 10000) // a type over 255 bytes: rejected
	const n = 50
	p := c.Pipeline()
	for range n {
		p.Publish(t.Context(), long, `{}`)
	}
	if _, err := p.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 10*time.Second, "all rejected", func() bool { return b.Stats().Rejected == n })
	out := logs.String()
	if lines := strings.Count(out, "message rejected"); lines < 1 || lines > 2 {
		t.Fatalf("%d rejected lines for %d messages within about a second, want 1 or 2:\n%.2000s", lines, n, out)
	}
	if strings.Contains(out, strings.Repeat("x", 65)) || !strings.Contains(out, "channel_bytes=") {
		t.Fatalf("the channel is not shortened (with its length) in:\n%.2000s", out)
	}
	// The next line, a second later, says how many were not logged.
	brokertest.Eventually(t, 10*time.Second, "a line counting the suppressed ones", func() bool {
		if err := c.Publish(t.Context(), long, `{}`).Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(logs.String(), "suppressed=")
	})
}
