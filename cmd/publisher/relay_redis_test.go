package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// collect reads every message of queue into a count by message id.
type collected struct {
	mu   sync.Mutex
	byID map[string]int
	last amqp091.Delivery
}

func collect(t *testing.T, queue string) *collected {
	t.Helper()
	ch := brokertest.Channel(t)
	ds, err := ch.Consume(queue, "", true /* autoAck */, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &collected{byID: map[string]int{}}
	go func() {
		for d := range ds {
			c.mu.Lock()
			c.byID[d.MessageId]++
			c.last = d
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collected) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// The original design's Redis publishers, as their code publishes:
// `PUBLISH events:CardAddedToLibraryEvent '{...,"aggregateId":"lib-1"}'`
// and `XADD events * type CardAddedToLibraryEvent event '{...}'` reach a
// queue bound to the type through `publisher relay`, which exits 0 on
// SIGTERM.
func TestRelayRedis_OriginalPublishersReachTheQueue(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	prefix := brokertest.Name(t) + ":"
	stream := brokertest.Name(t)
	url, c := redistest.URL(t), redistest.Client(t, stream, stream+redisbridge.RejectedSuffix)
	ctx := context.Background()
	body := `{"cardId":"c-1","libraryId":"lib-1","aggregateId":"lib-1"}`
	got := collect(t, queue)

	ps := startBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=redis", "REDIS_URL="+url, "REDIS_CHANNEL_PATTERN="+prefix+"*"), nil, "relay")
	ps.WaitLog(t, 30*time.Second, `"msg":"subscribed"`)
	if err := c.Publish(ctx, prefix+"CardAddedToLibraryEvent", body).Err(); err != nil {
		t.Fatal(err)
	}
	ps.Poll(t, 30*time.Second, "the pub/sub message in the queue", func() bool { return got.distinct() == 1 })
	got.mu.Lock()
	d := got.last
	got.mu.Unlock()
	checkMessage(t, d, exchange, "", "CardAddedToLibraryEvent", "lib-1", body)
	if len(d.MessageId) != 36 {
		t.Errorf("pub/sub message id %q, want a UUIDv7", d.MessageId)
	}

	entry, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "CardAddedToLibraryEvent", "event", body}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	st := startBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=redis-stream", "REDIS_URL="+url, "REDIS_STREAM="+stream), nil, "relay")
	st.Poll(t, 30*time.Second, "the stream entry in the queue", func() bool { return got.distinct() == 2 })
	got.mu.Lock()
	d = got.last
	got.mu.Unlock()
	checkMessage(t, d, exchange, stream+":"+entry, "CardAddedToLibraryEvent", "lib-1", body)

	for p, want := range map[*proc]string{ps: `eventfleet_bridge_published_total{source="redis"} 1`,
		st: `eventfleet_bridge_published_total{source="redis-stream"} 1`} {
		p.Poll(t, 30*time.Second, want+" on /metrics", func() bool { return strings.Contains(adminGet(t, p, "/metrics"), want) })
		if body := adminGet(t, p, "/readyz"); !strings.Contains(body, `"status":"ready"`) {
			t.Errorf("relay %v: /readyz %s", p.args, body)
		}
	}
	for _, p := range []*proc{ps, st} {
		p.Signal(t, syscall.SIGTERM)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Errorf("relay %v: exit %d after SIGTERM; stderr:\n%s", p.args, code, p.stderr)
		}
	}
}

// TestRelayRedis_StreamSurvivesASIGKILLedRelay: a relay is SIGKILLed
// mid-stream while entries keep coming; another, under another
// REDIS_CONSUMER, claims what the dead one left pending after
// REDIS_CLAIM_IDLE. Every entry reaches the queue at least once; the
// duplicates are counted and logged.
func TestRelayRedis_StreamSurvivesASIGKILLedRelay(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	stream := brokertest.Name(t)
	url, c := redistest.URL(t), redistest.Client(t, stream, stream+redisbridge.RejectedSuffix)
	ctx := context.Background()
	got := collect(t, queue)
	env := func(consumer string) []string {
		return brokerEnv(t, exchange, "RELAY_SOURCE=redis-stream", "REDIS_URL="+url, "REDIS_STREAM="+stream,
			"REDIS_CONSUMER="+consumer, "REDIS_CLAIM_IDLE=1s", "PUBLISH_WINDOW=16", "LOG_LEVEL=info")
	}

	// The producer adds entries, 50 at a time, until told to stop.
	var mu sync.Mutex
	var ids []string
	stop, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				stopped <- nil
				return
			default:
			}
			pipe := c.Pipeline()
			var cmds []*redis.StringCmd
			for i := range 50 {
				cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{
					"type", "CardAddedToLibraryEvent", "event", fmt.Sprintf(`{"aggregateId":"lib-%d","n":%d}`, i%10, n*50+i)}}))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				stopped <- err
				return
			}
			mu.Lock()
			for _, cmd := range cmds {
				ids = append(ids, stream+":"+cmd.Val())
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // pacing, not waiting for a state
		}
	}()
	stopProducer := func() {
		select {
		case <-stop:
			return
		default:
		}
		close(stop)
		if err := <-stopped; err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	t.Cleanup(stopProducer)

	a := startBin(t, env("relay-a"), nil, "relay")
	a.Poll(t, 60*time.Second, "300 events through relay-a", func() bool { return got.distinct() >= 300 })
	a.Kill(t)
	pend, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: redisbridge.DefaultGroup, Start: "-", End: "+", Count: 1000, Consumer: "relay-a"}).Result()
	if err != nil {
		t.Fatal(err)
	}
	atKill := got.distinct()

	b := startBin(t, env("relay-b"), nil, "relay")
	b.Poll(t, 60*time.Second, "300 more events through relay-b", func() bool { return got.distinct() >= atKill+300 })
	stopProducer()
	mu.Lock()
	all := append([]string(nil), ids...)
	mu.Unlock()
	b.Poll(t, 2*time.Minute, fmt.Sprintf("all %d entries in the queue and none pending", len(all)), func() bool {
		p, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
		if err != nil || p.Count != 0 {
			return false
		}
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, id := range all {
			if got.byID[id] == 0 {
				return false
			}
		}
		return true
	})
	b.Signal(t, syscall.SIGTERM)
	if code := b.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("relay-b: exit %d after SIGTERM; stderr:\n%s", code, b.stderr)
	}
	got.mu.Lock()
	dups := 0
	for _, n := range got.byID {
		dups += n - 1
	}
	got.mu.Unlock()
	var redelivered float64
	for _, rec := range b.logLines("stopped") {
		redelivered, _ = rec["redelivered"].(float64)
	}
	t.Logf("%d entries; relay-a SIGKILLed after %d, leaving %d pending; relay-b claimed %v (redelivered); duplicates in the queue: %d",
		len(all), atKill, len(pend), redelivered, dups)
	if int(redelivered) < len(pend) {
		t.Errorf("relay-b redelivered %v, fewer than the %d relay-a left pending", redelivered, len(pend))
	}
}

func TestRelayRedis_BadSettingsExit2NamingTheVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"RELAY_SOURCE=kafka"}, nil, "RELAY_SOURCE"},
		{[]string{"RELAY_SOURCE=redis", "REDIS_URL=http://:secret@h:6379/"}, nil, "REDIS_URL"},
		{[]string{"RELAY_SOURCE=redis", "REDIS_URL=redis://:secret@h:port/0"}, nil, "REDIS_URL"},
		{[]string{"RELAY_SOURCE=redis", "REDIS_CHANNEL_PATTERN=events:*:*"}, nil, "REDIS_CHANNEL_PATTERN"},
		{[]string{"RELAY_SOURCE=redis-stream", "REDIS_CLAIM_IDLE=-1s"}, nil, "REDIS_CLAIM_IDLE"},
		{[]string{"RELAY_SOURCE=redis-stream"}, []string{"migrate"}, "RELAY_SOURCE=redis-stream"},
	} {
		_, stderr, code := runBin(t, tt.env, nil, append([]string{"relay"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("env %v: exit %d, stderr %q; want 2 naming %s", tt.env, code, stderr, tt.want)
		}
		if strings.Contains(stderr, "secret") {
			t.Errorf("env %v: stderr shows the password: %q", tt.env, stderr)
		}
	}
}

// A Redis that refuses connections is said so in the log at once, with the
// password hidden, and /readyz says why the relay is not ready; the relay
// keeps retrying and still stops cleanly on SIGTERM.
func TestRelayRedis_RedisRefusedSaysSo(t *testing.T) {
	t.Parallel()
	exchange, _ := testExchange(t)
	url := fmt.Sprintf("redis://:secret@127.0.0.1:%d/0", brokertest.FreePort(t))
	for _, src := range []string{"redis", "redis-stream"} {
		env := brokerEnv(t, exchange, "RELAY_SOURCE="+src, "REDIS_URL="+url)
		p := startBin(t, env, nil, "relay")
		p.Poll(t, 30*time.Second, "the refusal in the log", func() bool {
			for _, rec := range p.logLines("Redis connection failed; retrying") {
				if msg, _ := rec["err"].(string); strings.Contains(msg, "connection refused") && strings.Contains(msg, "127.0.0.1") {
					return true
				}
			}
			return false
		})
		var addr string
		p.Poll(t, 30*time.Second, "the admin address", func() bool {
			for _, rec := range p.logLines("serving /metrics, /healthz and /readyz") {
				addr, _ = rec["addr"].(string)
			}
			return addr != ""
		})
		var out, errs string
		var code int
		p.Poll(t, 30*time.Second, "publisher health naming Redis", func() bool {
			out, errs, code = runBin(t, append(env, "METRICS_ADDR="+addr), nil, "health")
			return code == 1 && strings.Contains(errs, "redis") && strings.Contains(errs, "connection refused")
		})
		p.Signal(t, syscall.SIGTERM)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Errorf("%s: exit %d after SIGTERM; stderr:\n%s", src, code, p.stderr)
		}
		if strings.Contains(p.stderr.String()+out+errs, "secret") {
			t.Errorf("%s: the password shows in the log or health output", src)
		}
	}
}

// adminGet is the body of path on the process's METRICS_ADDR ("" until it
// is logged or when the request fails).
func adminGet(t *testing.T, p *proc, path string) string {
	t.Helper()
	var addr string
	for _, rec := range p.logLines("serving /metrics, /healthz and /readyz") {
		addr, _ = rec["addr"].(string)
	}
	if addr == "" {
		return ""
	}
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
