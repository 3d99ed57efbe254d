package natsbridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// TestJetStream_ConsumerDeleted_SetUpAgain: an operator deleting the
// durable consumer under a running bridge: the bridge creates it again and
// goes on; the messages published after it arrive.
func TestJetStream_ConsumerDeleted_SetUpAgain(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Backoff: fastBackoff}, pub)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "first published", func() bool { return b.Stats().Published == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, stream, consumer); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the consumer created again", func() bool {
		_, err := js.Consumer(ctx, stream, consumer)
		return err == nil
	})
	publishJS(t, js, root+".events.X", `{}`, "")
	// The recreated consumer starts from the stream's beginning
	// (DeliverAll): message 1 comes again, with its id.
	eventually(t, 20*time.Second, "messages after the deletion", func() bool { return pub.count() >= 3 })
	seen := map[string]int{}
	for _, ev := range pub.events() {
		seen[ev.ID]++
	}
	if seen[seqID(t, js, stream, 1)] == 0 || seen[seqID(t, js, stream, 2)] != 1 {
		t.Fatalf("ids %v", seen)
	}
}

// TestJetStream_ConnectionCut_NothingLost: the NATS connection is cut
// twice mid-stream; nats.go reconnects, the consumer pulls again, and every
// message is published (acks lost with the connection come again, with
// their ids).
func TestJetStream_ConnectionCut_NothingLost(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	proxy := newTCPProxy(t, natstest.URL(t))
	pub := &fakePublisher{delay: 5 * time.Millisecond}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: proxy.url, Subject: root + ".events.*",
		Stream: stream, Consumer: consumer, Window: 16, AckWait: 2 * time.Second, PublishTimeout: time.Second}, pub)
	const n = 600
	for i := range n {
		if _, err := js.PublishAsync(root+".events.X", fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not ack the test's publishes")
	}
	for cut := 1; cut <= 2; cut++ {
		at := pub.count() + 100
		eventually(t, 20*time.Second, "100 more published", func() bool { return pub.count() >= at })
		proxy.cut()
		eventually(t, 20*time.Second, "reconnected", func() bool { return b.Stats().Reconnects == int64(cut) })
	}
	eventually(t, 60*time.Second, "every message published", func() bool {
		seen := map[string]bool{}
		for _, ev := range pub.events() {
			seen[ev.ID] = true
		}
		return len(seen) == n
	})
	st := b.Stats()
	t.Logf("%d published (%d deliveries), stats %+v", n, pub.count(), st)
}

// TestJetStream_Stop_HandsOverAtOnce: a bridge stopped while messages wait
// behind a slow broker gives back (Naks) what it took and did not publish:
// the next bridge publishes them at once, long before AckWait (30s).
func TestJetStream_Stop_HandsOverAtOnce(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	const n = 40
	for i := range n {
		publishJS(t, js, root+".events.X", fmt.Sprintf(`{"i":%d}`, i), "")
	}
	slow := &fakePublisher{delay: 300 * time.Millisecond}
	cfg := natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Window: 8}
	b := startBridge(t, cfg, slow)
	eventually(t, 10*time.Second, "a batch in flight", func() bool { return slow.batches() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	first := slow.count()
	if first >= n {
		t.Fatalf("the slow bridge published all %d before Stop", first)
	}
	fast := &fakePublisher{}
	b2 := startBridge(t, cfg, fast)
	began := time.Now()
	eventually(t, 10*time.Second, "the rest published by the next bridge", func() bool { return first+fast.count() >= n })
	t.Logf("stopped bridge published %d; the next published %d in %v (redelivered %d)", first, fast.count(),
		time.Since(began).Round(time.Millisecond), b2.Stats().Redelivered)
}
