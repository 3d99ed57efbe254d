package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// TestCore_OriginalPublisherReachesQueue: `nc.Publish("events.<Type>",
// JSON of {...event, aggregateId, timestamp})`, the original design's
// publisher, on its own subject pattern events.*, reaches a RabbitMQ queue
// bound to the type, with the type, the aggregate and a fresh UUIDv7 per
// message: two identical messages stay two events.
func TestCore_OriginalPublisherReachesQueue(t *testing.T) {
	nc := natstest.Conn(t)
	pub, _, queue := rabbit(t, "CardAddedToLibraryEvent")
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore}, pub) // NATS_SUBJECT's default: events.*
	// The shared server may carry others' events.* too: ours are told by
	// their aggregate.
	agg := unique(t)
	body := strings.Replace(cardAdded, `"lib-9"`, `"`+agg+`"`, 2)
	for range 2 {
		if err := nc.Publish("events.CardAddedToLibraryEvent", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "2 published", func() bool { return b.Stats().Published >= 2 })
	var ids []string
	for _, d := range drain(t, queue, 2) {
		if d.Headers[amqp.HeaderAggregateID] != agg {
			continue
		}
		if d.Type != "CardAddedToLibraryEvent" || d.RoutingKey != "CardAddedToLibraryEvent" || string(d.Body) != body {
			t.Fatalf("type %q key %q body %s", d.Type, d.RoutingKey, d.Body)
		}
		if len(d.MessageId) != 36 || d.MessageId[14] != '7' {
			t.Fatalf("id %q: want a UUIDv7", d.MessageId)
		}
		ids = append(ids, d.MessageId)
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("ids %v: want two distinct ids for two identical messages", ids)
	}
}

// TestCore_BurstFasterThanBroker_MemoryBounded: a burst of 100,000
// messages of 512 B (51 MB) against a broker that takes 16 every 20 ms:
// nats.go's pending buffer stops at its limits, NATS drops the rest as a
// slow consumer, every message is either published or counted dropped, and
// the heap stays far below the burst.
func TestCore_BurstFasterThanBroker_MemoryBounded(t *testing.T) {
	nc := natstest.Conn(t)
	subject := unique(t)
	pub := &fakePublisher{delay: 20 * time.Millisecond}
	const pendingBytes = 1 << 20
	m := metrics.New()
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore, Subject: subject + ".*", Window: 16,
		PendingMsgs: 2000, PendingBytes: pendingBytes, Metrics: m}, pub)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // samples the heap during the burst
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	const n, size = 100_000, 512
	body := []byte(`{"aggregateId":"a","pad":"` + strings.Repeat("x", size-30) + `"}`)
	began := time.Now()
	for range n {
		if err := nc.Publish(subject+".Burst", body); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	burst := time.Since(began)
	eventually(t, 60*time.Second, "every message published or counted dropped", func() bool {
		st := b.Stats()
		return st.Published+st.Dropped == n
	})
	close(stop)
	wg.Wait()
	st := b.Stats()
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("burst of %d × %d B (%.1f MB) in %v: published %d, dropped %d; heap in use grew by at most %.1f MB (pending limit %d msgs / %.1f MB, window %d)",
		n, len(body), float64(n*len(body))/1e6, burst.Round(time.Millisecond), st.Published, st.Dropped, float64(grew)/1e6,
		2000, float64(pendingBytes)/1e6, 16)
	if st.Dropped == 0 {
		t.Fatalf("stats %+v: a burst far faster than the broker dropped nothing", st)
	}
	// The counter follows Stats right after: waited for, not raced.
	eventually(t, 5*time.Second, "eventfleet_bridge_dropped_total = Stats.Dropped", func() bool {
		return metricValue(t, m, "eventfleet_bridge_dropped_total", "nats") == float64(st.Dropped)
	})
	if pub.maxSize > 16 {
		t.Fatalf("a batch of %d: more than the window", pub.maxSize)
	}
	if grew > 16<<20 {
		t.Fatalf("heap grew by %d B during a %d B burst: not bounded by the pending limits", grew, n*len(body))
	}
}

// TestCore_ConnectionCut_Reconnects: a cut NATS connection is
// re-established by nats.go and counted; messages flow again after it.
func TestCore_ConnectionCut_Reconnects(t *testing.T) {
	nc := natstest.Conn(t)
	proxy := newTCPProxy(t, natstest.URL(t))
	subject := unique(t)
	pub := &fakePublisher{}
	m := metrics.New()
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore, URL: proxy.url, Subject: subject + ".*", Metrics: m}, pub)
	proxy.cut()
	eventually(t, 20*time.Second, "a reconnect counted", func() bool { return b.Stats().Reconnects == 1 })
	if r := metricValue(t, m, "eventfleet_bridge_reconnects_total", "nats"); r != 1 {
		t.Fatalf("eventfleet_bridge_reconnects_total = %v", r)
	}
	// Published until one arrives: the bridge's subscription is back once
	// nats.go resent it after the reconnect, which the test cannot see.
	eventually(t, 20*time.Second, "a message after the reconnect", func() bool {
		_ = nc.Publish(subject+".After", []byte(`{}`))
		_ = nc.Flush()
		return pub.count() > 0
	})
}

// TestStart_Unreachable: a NATS that cannot be reached fails Start at once
// with ErrConnect, naming the server with its password hidden.
func TestStart_Unreachable(t *testing.T) {
	for _, mode := range []natsbridge.Mode{natsbridge.ModeCore, natsbridge.ModeJetStream} {
		t.Run(string(mode), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			_ = ln.Close() // nothing listens there now
			b, err := natsbridge.New(natsbridge.Config{Mode: mode, URL: "nats://relay:s3cret@" + addr,
				ConnectTimeout: 2 * time.Second, Logger: quiet}, &fakePublisher{})
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			err = b.Start(context.Background())
			if !errors.Is(err, natsbridge.ErrConnect) || strings.Contains(err.Error(), "s3cret") ||
				!strings.Contains(err.Error(), "nats://relay:xxxxx@"+addr) {
				t.Fatalf("Start: %v, want ErrConnect naming the server, password hidden", err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Fatalf("Start took %v", took)
			}
			select {
			case <-b.Done():
			case <-time.After(time.Second):
				t.Fatal("Done not closed after a failed Start")
			}
			t.Log(err)
		})
	}
}

// TestStart_SilentPeer: a peer that accepts and says nothing fails Start
// within ConnectTimeout, not never.
func TestStart_SilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeCore, URL: "nats://" + ln.Addr().String(),
		ConnectTimeout: 500 * time.Millisecond, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = b.Start(context.Background())
	if !errors.Is(err, natsbridge.ErrConnect) || time.Since(began) > 3*time.Second {
		t.Fatalf("Start: %v after %v, want ErrConnect within ConnectTimeout", err, time.Since(began))
	}
}

// tcpProxy forwards to a NATS server; cut closes its connections, and
// setDown keeps new ones out too (an outage).
type tcpProxy struct {
	url  string
	ln   net.Listener
	mu   sync.Mutex
	cs   []net.Conn
	down bool
	wg   sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, url: fmt.Sprintf("nats://%s", ln.Addr())}
	if u.User != nil {
		p.url = fmt.Sprintf("nats://%s@%s", u.User, ln.Addr())
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				_ = c.Close()
				continue
			}
			s, err := net.Dial("tcp", u.Host)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.cs = append(p.cs, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); pipe(s, c) }()
			go func() { defer p.wg.Done(); pipe(c, s) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cs {
		_ = c.Close()
	}
	p.cs = nil
}

// setDown starts (down) or ends an outage: while down, connections are
// cut and refused.
func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.cut()
	}
}

// TestCore_LargeMessages_WindowBytesBoundsHeld: with large bodies the
// byte budget, not Window, bounds what the bridge holds: no batch carries
// more than WindowBytes, and nothing is lost while NATS's own buffer
// absorbs the rest.
func TestCore_LargeMessages_WindowBytesBoundsHeld(t *testing.T) {
	nc := natstest.Conn(t)
	subject := unique(t)
	pub := &fakePublisher{delay: 5 * time.Millisecond}
	const size, windowBytes, n = 10 << 10, 32 << 10, 50
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore, Subject: subject + ".*", Window: 256,
		WindowBytes: windowBytes}, pub)
	body := []byte(`{"pad":"` + strings.Repeat("x", size-10) + `"}`)
	for range n {
		if err := nc.Publish(subject+".X", body); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "all published", func() bool { return pub.count() == n })
	pub.mu.Lock()
	largest := pub.maxSize
	pub.mu.Unlock()
	if largest*size > windowBytes {
		t.Fatalf("a batch of %d messages of %d B: over WindowBytes %d", largest, size, windowBytes)
	}
	if st := b.Stats(); st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}
