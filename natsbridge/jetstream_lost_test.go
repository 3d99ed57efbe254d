package natsbridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// TestJetStream_StreamDeleted_StopsWithErrStreamLost: an operator deleting
// the stream under a running bridge: the bridge does not create it again
// (its sequences, and so the ids <stream>:<seq>, would restart at 1 and the
// fleet would drop new events as duplicates); it stops with ErrStreamLost.
func TestJetStream_StreamDeleted_StopsWithErrStreamLost(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	lb := &logBuffer{}
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Backoff: fastBackoff, Logger: lb.logger()}, pub)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "first published", func() bool { return b.Stats().Published == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge still runs 20s after its stream was deleted")
	}
	if !errors.Is(b.Err(), natsbridge.ErrStreamLost) {
		t.Fatalf("Err = %v, want ErrStreamLost", b.Err())
	}
	if b.Connected() {
		t.Fatal("Connected after the bridge stopped")
	}
	if _, err := js.Stream(ctx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the stream exists again (err %v): the bridge must not recreate it", err)
	}
	if !strings.Contains(lb.String(), "level=ERROR") {
		t.Fatalf("no ERROR line:\n%s", lb.String())
	}

	// The relay process exits and its supervisor starts it again: the new
	// bridge creates the stream, whose sequences start at 1 again. Its
	// first message must not get the id the first stream's did, or the
	// fleet's inboxes would drop it as a duplicate.
	first := pub.events()[0].ID
	pub2 := &fakePublisher{}
	b2 := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Backoff: fastBackoff}, pub2)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "published by the restarted bridge", func() bool { return b2.Stats().Published == 1 })
	if again := pub2.events()[0].ID; again == first {
		t.Fatalf("the recreated stream's first message has id %q, the deleted stream's first message's", again)
	}
}

// TestJetStream_StreamRecreated_StopsWithErrStreamLost: the stream deleted
// and at once created again by someone else before the bridge sets its
// consumer up again: its sequences restarted, so the bridge stops too.
func TestJetStream_StreamRecreated_StopsWithErrStreamLost(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	proxy := newTCPProxy(t, natstest.URL(t))
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: proxy.url, Subject: root + ".events.*",
		Stream: stream, Consumer: consumer, Backoff: fastBackoff}, pub)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "first published", func() bool { return b.Stats().Published == 1 })

	// While the bridge is cut off, the stream is made again.
	proxy.setDown(true)
	eventually(t, 10*time.Second, "the bridge sees the outage", func() bool { return !b.Connected() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	createStream(t, js, stream, root+".events.*")
	proxy.setDown(false)
	select {
	case <-b.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge still runs 30s after its stream was made again")
	}
	if !errors.Is(b.Err(), natsbridge.ErrStreamLost) {
		t.Fatalf("Err = %v, want ErrStreamLost", b.Err())
	}
	if pub.count() != 1 {
		t.Fatalf("%d published, want 1", pub.count())
	}
}

// TestJetStream_ConsumerDeletedWhileDisconnected_Recovered: the durable
// consumer deleted while the bridge's connection is down: nats.go never
// reports it, yet once reconnected the bridge notices, says so in Healthy,
// creates the consumer again and publishes what comes next.
func TestJetStream_ConsumerDeletedWhileDisconnected_Recovered(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	proxy := newTCPProxy(t, natstest.URL(t))
	lb := &logBuffer{}
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: proxy.url, Subject: root + ".events.*",
		Stream: stream, Consumer: consumer, Backoff: fastBackoff, Logger: lb.logger()}, pub)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "first published", func() bool { return b.Stats().Published == 1 })

	proxy.setDown(true)
	eventually(t, 10*time.Second, "Healthy reports the outage", func() bool { return b.Healthy() != nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, stream, consumer); err != nil {
		t.Fatal(err)
	}
	proxy.setDown(false)
	eventually(t, 30*time.Second, "the consumer created again", func() bool {
		_, err := js.Consumer(ctx, stream, consumer)
		return err == nil
	})
	eventually(t, 30*time.Second, "healthy again", func() bool { return b.Healthy() == nil })
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 30*time.Second, "message 2 published", func() bool {
		for _, ev := range pub.events() {
			if ev.ID == seqID(t, js, stream, 2) {
				return true
			}
		}
		return false
	})
	if !strings.Contains(lb.String(), "WHOLE stream") {
		t.Fatalf("no loud line about DeliverAll:\n%s", lb.String())
	}
}

// TestJetStream_StopTimeout_ReturnsSoonAfterCtx: a Stop whose context ends
// while a batch hangs at the broker abandons it (Halt) and returns soon
// after, not seconds later.
func TestJetStream_StopTimeout_ReturnsSoonAfterCtx(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	hung := &fakePublisher{delay: time.Minute}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, PublishTimeout: 30 * time.Second, AckWait: time.Minute}, hung)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 10*time.Second, "a batch in flight", func() bool { return hung.batches() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := b.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want its context's error", err)
	}
	// The Naks' flush is bounded by 1s.
	if took := time.Since(began); took > 2500*time.Millisecond {
		t.Fatalf("Stop took %v with a 300ms context", took)
	}
}
