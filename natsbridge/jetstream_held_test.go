package natsbridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/natsbridge"
	"github.com/eventfleet/eventfleet/retry"
)

// outagePublisher is a broker away until up: each batch blocks until its
// context ends, then fails, as the amqp Publisher does without a
// connection.
type outagePublisher struct {
	mu    sync.Mutex
	up    bool
	calls int
	got   []event.Event
}

func (p *outagePublisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	p.mu.Lock()
	up := p.up
	p.calls++
	p.mu.Unlock()
	if !up {
		<-ctx.Done()
		be := &amqp.BatchError{Errs: make([]error, len(evs)), Failed: len(evs)}
		for i := range be.Errs {
			be.Errs[i] = fmt.Errorf("no broker connection: %w", ctx.Err())
		}
		return be
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, evs...)
	return nil
}

func (p *outagePublisher) setUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
}

func (p *outagePublisher) ids() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]int{}
	for _, ev := range p.got {
		seen[ev.ID]++
	}
	return seen
}

func (p *outagePublisher) batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// TestJetStream_BrokerOutage_HeldMessagesNotRedelivered: messages waiting
// in the bridge behind a failing batch and the pause after it, for longer
// than AckWait, are kept in progress: none is delivered again while held,
// and each reaches the broker once when it is back.
func TestJetStream_BrokerOutage_HeldMessagesNotRedelivered(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	pub := &outagePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Window: 4, PublishTimeout: time.Second, AckWait: 1500 * time.Millisecond,
		Backoff: retry.Backoff{Min: time.Second, Max: time.Second}}, pub)
	publishJS(t, js, root+".events.X", `{"i":0}`, "")
	eventually(t, 10*time.Second, "the first batch in flight", func() bool { return pub.batches() >= 1 })
	for i := 1; i < 4; i++ {
		publishJS(t, js, root+".events.X", fmt.Sprintf(`{"i":%d}`, i), "")
	}
	// Three failed batches and their pauses: about 4 s, well over AckWait.
	eventually(t, 20*time.Second, "three failed batches", func() bool { return pub.batches() >= 3 })
	pub.setUp()
	eventually(t, 30*time.Second, "all 4 published", func() bool { return b.Stats().Published == 4 })
	seen := pub.ids()
	for seq := 1; seq <= 4; seq++ {
		if n := seen[seqID(t, js, stream, uint64(seq))]; n != 1 {
			t.Fatalf("seq %d published %d times: %v (stats %+v)", seq, n, seen, b.Stats())
		}
	}
	// The failed batches were Naked (a timeout may leave a copy at the
	// broker, so their next deliveries count as redeliveries); any
	// redelivery beyond those Naks is AckWait running out on a held one.
	if st := b.Stats(); st.Redelivered > st.Retried {
		t.Fatalf("held messages delivered again after AckWait: %+v", st)
	}
}

// TestJetStream_InvalidMsgID_FallsBackToStreamSeq: a Nats-Msg-Id that
// cannot be an event id (too long, control characters) does not make a
// fine message a reject: it gets <stream>:<seq>, logged once.
func TestJetStream_InvalidMsgID_FallsBackToStreamSeq(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	lb := &logBuffer{}
	pub := &fakePublisher{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Logger: lb.logger()}, pub)
	publishJS(t, js, root+".events.X", `{}`, strings.Repeat("a", 300))
	publishJS(t, js, root+".events.X", `{}`, "bad\x01id")
	publishJS(t, js, root+".events.X", `{}`, "good-id")
	eventually(t, 10*time.Second, "3 published", func() bool { return b.Stats().Published == 3 })
	got := map[string]bool{}
	for _, ev := range pub.events() {
		got[ev.ID] = true
	}
	for _, id := range []string{seqID(t, js, stream, 1), seqID(t, js, stream, 2), "good-id"} {
		if !got[id] {
			t.Fatalf("id %q not published: %v", id, got)
		}
	}
	if st := b.Stats(); st.Rejected != 0 {
		t.Fatalf("rejected: %+v", st)
	}
	if n := strings.Count(lb.String(), "cannot be an event id"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, lb.String())
	}
}

// TestJetStream_SharedConsumerReconfigured_Warns: a relay started with
// another PUBLISH_WINDOW than the relay before it on the same durable
// consumer says what it changes.
func TestJetStream_SharedConsumerReconfigured_Warns(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	cfg := natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Window: 8}
	startBridge(t, cfg, &fakePublisher{})
	lb := &logBuffer{}
	cfg.Window, cfg.Logger = 16, lb.logger()
	startBridge(t, cfg, &fakePublisher{})
	log := lb.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "max_ack_pending_was=8") ||
		!strings.Contains(log, "max_ack_pending=16") {
		t.Fatalf("no WARN naming the change:\n%s", log)
	}
}

// TestJetStream_BrokerKeepsRefusing_WarnsAndCountsRetried: a message the
// broker keeps returning (unroutable: it has no copy) is Naked again and
// again: counted as retried, not as a redelivery (which means a possible
// duplicate), and warned about after a few deliveries.
func TestJetStream_BrokerKeepsRefusing_WarnsAndCountsRetried(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.*")
	lb := &logBuffer{}
	pub := &fakePublisher{refuse: func(event.Event) error { return amqp.ErrReturned }}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.*", Stream: stream,
		Consumer: consumer, Backoff: fastBackoff, Logger: lb.logger()}, pub)
	publishJS(t, js, root+".events.X", `{}`, "")
	eventually(t, 20*time.Second, "the WARN", func() bool { return strings.Contains(lb.String(), "keeps refusing") })
	if st := b.Stats(); st.Retried < 5 || st.Redelivered != 0 {
		t.Fatalf("stats %+v: want Retried >= 5, Redelivered 0", st)
	}
}

// TestJetStream_RejectLog_SubjectTruncated: a message that cannot be an
// event, on a long subject, is logged with the subject cut short.
func TestJetStream_RejectLog_SubjectTruncated(t *testing.T) {
	nc := natstest.Conn(t)
	root, stream, consumer, js := jsNames(t, nc)
	createStream(t, js, stream, root+".events.>")
	lb := &logBuffer{}
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeJetStream, Subject: root + ".events.>", Stream: stream,
		Consumer: consumer, Logger: lb.logger()}, &fakePublisher{})
	long := root + ".events." + strings.Repeat("x", 2000)
	publishJS(t, js, long, `not json`, "")
	// The line is written after the count: wait for the line.
	eventually(t, 10*time.Second, "the reject logged", func() bool { return strings.Contains(lb.String(), "set aside") })
	if st := b.Stats(); st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
	log := lb.String()
	if strings.Contains(log, strings.Repeat("x", 100)) || !strings.Contains(log, "bytes)") {
		t.Fatalf("subject not truncated:\n%.2000s", log)
	}
}
