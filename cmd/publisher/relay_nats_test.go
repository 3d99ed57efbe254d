package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// The original design's NATS publishers reach a queue bound to the type
// through `publisher relay`: core NATS (`nc.Publish("events.<EventName>",
// ...)`, a fresh id) and JetStream (the Nats-Msg-Id when the publisher set
// one, else <stream>:<sequence>); /metrics counts them, /readyz is ready,
// SIGTERM exits 0. The subjects are prefixed: a stream capturing events.*
// would take real traffic of the shared server.
func TestRelayNATS_OriginalPublishersReachTheQueue(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	url, nc := natstest.URL(t), natstest.Conn(t)
	prefix := strings.ReplaceAll(brokertest.Name(t), ".", "-")
	subject := prefix + ".events.*"
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	body := `{"cardId":"c-1","libraryId":"lib-1","aggregateId":"lib-1","timestamp":"2026-12-03T10:00:00Z"}`
	got := collect(t, queue)
	ctx := context.Background()

	core := startBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=nats", "NATS_URL="+url, "NATS_SUBJECT="+subject), nil, "relay")
	core.WaitLog(t, 30*time.Second, `"msg":"subscribed to core NATS`)
	if err := nc.Publish(prefix+".events.CardAddedToLibraryEvent", []byte(body)); err != nil {
		t.Fatal(err)
	}
	core.Poll(t, 30*time.Second, "the core NATS message in the queue", func() bool { return got.distinct() == 1 })
	got.mu.Lock()
	d := got.last
	got.mu.Unlock()
	checkMessage(t, d, exchange, "", "CardAddedToLibraryEvent", "lib-1", body)
	if len(d.MessageId) != 36 {
		t.Errorf("core NATS message id %q, want a UUIDv7", d.MessageId)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })
	if _, err := js.Publish(ctx, prefix+".events.CardAddedToLibraryEvent", []byte(body), jetstream.WithMsgID("m-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, prefix+".events.CardRemovedFromLibraryEvent", []byte(body)); err != nil {
		t.Fatal(err)
	}
	// The core relay sees these two as well (they are core messages too):
	// stop it first, so the queue holds only the JetStream relay's.
	core.Signal(t, syscall.SIGTERM)
	if code := core.wait(t, 30*time.Second); code != 0 {
		t.Errorf("core relay: exit %d after SIGTERM; stderr:\n%s", code, core.stderr)
	}
	before := got.distinct()
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	seq2 := natsbridge.SeqID(stream, info.CachedInfo().Created, 2)
	st := startBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=jetstream", "NATS_URL="+url, "NATS_SUBJECT="+subject,
		"NATS_STREAM="+stream, "NATS_CONSUMER="+stream+"-relay"), nil, "relay")
	got.mu.Lock()
	_, sawM1 := got.byID["m-1"]
	got.mu.Unlock()
	if sawM1 {
		t.Fatal("m-1 in the queue before the JetStream relay ran")
	}
	st.Poll(t, 30*time.Second, "both JetStream messages in the queue", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.byID["m-1"] > 0 && got.byID[seq2] > 0
	})
	if n := got.distinct(); n != before+2 {
		t.Errorf("%d distinct messages after the JetStream relay, want %d", n, before+2)
	}
	want := `eventfleet_bridge_published_total{source="jetstream"} 2`
	st.Poll(t, 30*time.Second, want+" on /metrics", func() bool { return strings.Contains(adminGet(t, st, "/metrics"), want) })
	if body := adminGet(t, st, "/readyz"); !strings.Contains(body, `"status":"ready"`) {
		t.Errorf("jetstream relay: /readyz %s", body)
	}
	st.Signal(t, syscall.SIGTERM)
	if code := st.wait(t, 30*time.Second); code != 0 {
		t.Errorf("jetstream relay: exit %d after SIGTERM; stderr:\n%s", code, st.stderr)
	}
}

// Bad NATS settings exit 2 naming the variable; a NATS that refuses the
// connection stops the relay at once with an error that says so.
func TestRelayNATS_BadSettingsAndUnreachableServer(t *testing.T) {
	t.Parallel()
	exchange, _ := testExchange(t)
	for _, tc := range []struct{ env, want string }{
		{"NATS_ACK_WAIT=1s", "NATS_ACK_WAIT"},
		{"NATS_SUBJECT=events.CardAdded", "NATS_SUBJECT"},
		{"NATS_URL=http://x", "NATS_URL"},
	} {
		_, stderr, code := runBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=jetstream", "PUBLISH_TIMEOUT=10s", tc.env), nil, "relay")
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %s", tc.env, code, stderr, tc.want)
		}
	}
	_, stderr, code := runBin(t, brokerEnv(t, exchange, "RELAY_SOURCE=nats", "NATS_URL=nats://relay:s3cret@127.0.0.1:1"), nil, "relay")
	if code == 0 || !strings.Contains(stderr, "NATS") || strings.Contains(stderr, "s3cret") {
		t.Errorf("unreachable NATS: exit %d, stderr %q; want a failure naming NATS, password hidden", code, stderr)
	}
}
