package natsbridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// The original design's publisher body: the event, its aggregateId and a
// timestamp.
const cardAdded = `{"type":"CardAddedToLibraryEvent","cardId":"c-1","libraryId":"lib-9","aggregateId":"lib-9","timestamp":"2026-12-03T10:00:00.000Z"}`

// TestJetStream_OriginalPublisherReachesQueue: messages published through
// JetStream, with and without Nats-Msg-Id, and by a plain core publish the
// stream captures, reach a RabbitMQ queue bound to
// their type, with the type, aggregate and a stable id; a message whose
// confirm was lost is delivered again and reaches the queue again with the
// same id.
func TestJetStream_OriginalPublisherReachesQueue(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.>")
	pub, _, queue := rabbit(t, "CardAddedToLibraryEvent", "billing.InvoicePaid")
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.>", Stream: stream,
		Consumer: consumer, AckWait: 3 * time.Second, PublishTimeout: 2 * time.Second}, &loseFirstConfirm{pub: pub})

	publishJS(t, js, root+".events.CardAddedToLibraryEvent", cardAdded, "card-added-1")
	publishJS(t, js, root+".events.CardAddedToLibraryEvent", cardAdded, "")
	publishJS(t, js, root+".events.billing.InvoicePaid", `{"aggregateId":7,"amount":12}`, "")
	// The original design's publisher unchanged: a core NATS publish,
	// which the stream captures.
	if err := nc.Publish(root+".events.CardAddedToLibraryEvent", []byte(cardAdded)); err != nil {
		t.Fatal(err)
	}

	eventually(t, 20*time.Second, "4 messages published and acked", func() bool { return b.Stats().Published == 4 })
	ds := drain(t, queue, 4)
	// The first batch's confirm was "lost": its messages came again, and
	// reached the queue twice, with their ids.
	st := b.Stats()
	if st.Redelivered == 0 {
		t.Fatalf("stats %+v: want a redelivery after the lost confirm", st)
	}
	ds = append(ds, drain(t, queue, int(st.Redelivered))...)
	want := map[string]struct{ typ, agg, body string }{
		"card-added-1":          {"CardAddedToLibraryEvent", "lib-9", cardAdded},
		seqID(t, js, stream, 2): {"CardAddedToLibraryEvent", "lib-9", cardAdded},
		seqID(t, js, stream, 3): {"billing.InvoicePaid", "7", `{"aggregateId":7,"amount":12}`},
		seqID(t, js, stream, 4): {"CardAddedToLibraryEvent", "lib-9", cardAdded},
	}
	seen := map[string]int{}
	for _, d := range ds {
		w, ok := want[d.MessageId]
		if !ok {
			t.Fatalf("unexpected message id %q (type %q)", d.MessageId, d.Type)
		}
		if d.Type != w.typ || d.RoutingKey != w.typ || d.Headers[amqp.HeaderAggregateID] != w.agg || string(d.Body) != w.body {
			t.Fatalf("message %s: type %q key %q headers %v body %s", d.MessageId, d.Type, d.RoutingKey, d.Headers, d.Body)
		}
		seen[d.MessageId]++
	}
	dups := 0
	for id := range want {
		if seen[id] == 0 {
			t.Fatalf("message %s never reached the queue (seen %v)", id, seen)
		}
		dups += seen[id] - 1
	}
	if int64(dups) != st.Redelivered {
		t.Fatalf("%d duplicates in the queue, %d redeliveries counted: %v", dups, st.Redelivered, seen)
	}
	t.Logf("ids %v; redelivered %d", seen, st.Redelivered)
}

// TestJetStream_RejectedTermed: a message that cannot be an event is
// terminated (never delivered again, still in the stream), logged once
// with its sequence, and counted; the good ones around it go through.
func TestJetStream_RejectedTermed(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	pub := &fakePublisher{}
	logs := &logBuffer{}
	m := metrics.New()
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, AckWait: 2 * time.Second, PublishTimeout: time.Second, Logger: logs.logger(), Metrics: m}, pub)

	publishJS(t, js, root+".events.Good", `{"aggregateId":"a"}`, "")
	publishJS(t, js, root+".events.Bad", `not json`, "")
	publishJS(t, js, root+".events.Good", `{"aggregateId":"b"}`, "")
	eventually(t, 10*time.Second, "2 published, 1 rejected", func() bool {
		st := b.Stats()
		return st.Published == 2 && st.Rejected == 1
	})
	// Terminated: the consumer has nothing pending or unacked, yet the
	// message is still in the stream at sequence 2.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eventually(t, 10*time.Second, "no message pending or unacked", func() bool {
		ci, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ci.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	})
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, 2)
	if err != nil || string(raw.Data) != "not json" {
		t.Fatalf("message 2 in the stream: %v, %v", raw, err)
	}
	if n := strings.Count(logs.String(), "message set aside"); n != 1 || !strings.Contains(logs.String(), "stream_seq=2") {
		t.Fatalf("logged %d times, want once with its sequence:\n%s", n, logs.String())
	}
	if b.Stats().Redelivered != 0 {
		t.Fatalf("stats %+v: the rejected message came again", b.Stats())
	}
	if p, r := metricValue(t, m, "eventfleet_bridge_published_total", "jetstream"),
		metricValue(t, m, "eventfleet_bridge_rejected_total", "jetstream"); p != 2 || r != 1 {
		t.Fatalf("metrics: published %v, rejected %v; want 2, 1", p, r)
	}
}

// TestJetStream_BrokerRefusalNakDelayed: while the broker refuses every
// event, messages are Naked with a growing delay and nothing is acked
// (nothing lost); the batches tried stay few (no hot loop); once the broker
// takes them, all arrive with their ids.
func TestJetStream_BrokerRefusalNakDelayed(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	pub := &fakePublisher{refuse: func(event.Event) error { return amqp.ErrNacked }}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, AckWait: 5 * time.Second, PublishTimeout: time.Second}, pub)
	for range 5 {
		publishJS(t, js, root+".events.X", `{}`, "")
	}
	eventually(t, 10*time.Second, "redeliveries after Naks", func() bool { return b.Stats().Redelivered >= 5 })
	start, calls := time.Now(), pub.batches()
	time.Sleep(time.Second) // measuring a rate: how many batches in one second
	rate := float64(pub.batches()-calls) / time.Since(start).Seconds()
	if rate > 20 {
		t.Fatalf("%.0f batches/s while the broker refuses everything: a hot loop", rate)
	}
	t.Logf("%.1f batches/s while refused", rate)
	pub.mu.Lock()
	pub.refuse = nil
	pub.mu.Unlock()
	eventually(t, 40*time.Second, "all 5 published", func() bool { return b.Stats().Published == 5 })
	ids := map[string]bool{}
	for _, ev := range pub.events() {
		ids[ev.ID] = true
	}
	for seq := 1; seq <= 5; seq++ {
		if id := seqID(t, js, stream, uint64(seq)); !ids[id] {
			t.Fatalf("id %s not published: %v", id, ids)
		}
	}
}

// TestJetStream_CreatesMissingStream: a missing stream is created with the
// subject, and said so; an existing one is used as it is.
func TestJetStream_CreatesMissingStream(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	logs := &logBuffer{}
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Logger: logs.logger()}, pub)
	if !strings.Contains(logs.String(), "created the JetStream stream") {
		t.Fatalf("no log of the stream's creation:\n%s", logs.String())
	}
	publishJS(t, js, root+".events.X", `{"aggregateId":"a"}`, "")
	eventually(t, 10*time.Second, "published", func() bool { return b.Stats().Published == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A second bridge finds it: no creation, the consumer carries on.
	logs2 := &logBuffer{}
	b2 := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Logger: logs2.logger()}, pub)
	if strings.Contains(logs2.String(), "created the JetStream stream") {
		t.Fatalf("an existing stream was created again:\n%s", logs2.String())
	}
	publishJS(t, js, root+".events.X", `{"aggregateId":"b"}`, "")
	eventually(t, 10*time.Second, "published", func() bool { return b2.Stats().Published == 1 })
	if pub.count() != 2 || b2.Stats().Redelivered != 0 {
		t.Fatalf("published %d, stats %+v: want 2, no redelivery", pub.count(), b2.Stats())
	}
}

// TestJetStream_FilterOutsideStream: a subject the existing stream does not
// capture is a clear ErrJetStream at Start.
func TestJetStream_FilterOutsideStream(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".other.*")
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: natstest.URL(t), Subject: root + ".events.*",
		Stream: stream, Consumer: consumer, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if !errors.Is(err, natsbridge.ErrJetStream) || !strings.Contains(err.Error(), stream) {
		t.Fatalf("Start: %v, want ErrJetStream naming the stream", err)
	}
	<-b.Done()
	if !errors.Is(b.Err(), natsbridge.ErrJetStream) {
		t.Fatalf("Err: %v", b.Err())
	}
}
