package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// ownNames is the pattern of app a's queues and exchange
// (docs/least-privilege.md, "Permission patterns").
const ownNames = `events_a(\.hops|\.dead|\.retry\.[0-9][0-9.hms]*)?`

// TestWorker_RunsAsAUserScopedToItsApp runs `worker run` and `worker dlq
// replay` with TOPOLOGY=passive as a broker user that may touch app a's
// names only (no write on amq.default, no configure on domain_events), on a
// private node: events are handled, a failing one is retried and
// dead-lettered, and the dead letter is replayed to the app's queue; then
// `worker dlq --unrouted replay` as the unrouted queue's operator (configure
// ^$, write the exchange, read the unrouted queue) replays a kept event.
func TestWorker_RunsAsAUserScopedToItsApp(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	admin := brokertest.ChannelAt(t, node.URL())
	// The topology owner's one step: a Publisher with TOPOLOGY=declare
	// makes the shared exchange and the unrouted queue and exchange.
	owner, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Exchange: "domain_events",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-owner.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the owner's publisher did not connect")
	}
	if err := owner.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	node.Ctl(t, "add_user", "worker-a", "pw-a")
	node.Ctl(t, "set_permissions", "-p", "/", "worker-a", "^"+ownNames+"$", "^"+ownNames+"$", "^(domain_events|"+ownNames+")$")
	env := map[string]string{
		"AMQP_URL": fmt.Sprintf("amqp://worker-a:pw-a@127.0.0.1:%d/", node.Port),
		"EXCHANGE": "domain_events", "APP_NAME": "a", "TOPOLOGY": "passive", "LOG_LEVEL": "info",
		"EVENT_TYPES": cardAdded, "RETRY_DELAYS": "100ms", "RETRY_MAX_ATTEMPTS": "2",
	}
	h := newHook(t)
	env["HANDLER"], env["WEBHOOK_URL"] = "webhook", h.srv.URL+"/events"
	p := startWorker(t, env, "run")
	p.waitConsuming()

	publishTo(t, admin, "domain_events", cardAdded,
		amqp091.Publishing{MessageId: "good-1", Type: cardAdded, Headers: amqp091.Table{"aggregate_id": "lib-1"}, Body: []byte(`{}`)},
		amqp091.Publishing{MessageId: "poison-1", Type: cardAdded, Headers: amqp091.Table{"aggregate_id": "poison"}, Body: []byte(`{}`)})
	brokertest.Eventually(t, 30*time.Second, "the poison event in events_a.dead", func() bool {
		return nodeDepth(t, admin, "events_a.dead") == 1
	})
	got := h.byID()
	if len(got["good-1"]) != 1 || fmt.Sprint(attempts(got["poison-1"])) != "[1 2]" {
		t.Errorf("posted: good-1 %d times, poison-1 with attempts %v; want once, [1 2]", len(got["good-1"]), attempts(got["poison-1"]))
	}
	p.stop(15 * time.Second)

	r := startWorker(t, env, "dlq", "replay")
	if code := r.wait(30 * time.Second); code != 0 {
		t.Fatalf("worker dlq replay as app a's user exited %d:\n%s%s", code, r.Stdout.String(), r.Stderr.String())
	}
	if d, q := nodeDepth(t, admin, "events_a.dead"), nodeDepth(t, admin, "events_a"); d != 0 || q != 1 {
		t.Errorf("after the replay: %d in events_a.dead, %d in events_a; want 0 and 1", d, q)
	}

	// The operator of the unrouted queue, with exactly its patterns,
	// replays an event kept there to the exchange, where events_a is now
	// bound for its type.
	node.Ctl(t, "add_user", "unrouted-op", "pw-u")
	node.Ctl(t, "set_permissions", "-p", "/", "unrouted-op", "^$", "^domain_events$", `^domain_events\.unrouted$`)
	node.Ctl(t, "set_topic_permissions", "-p", "/", "unrouted-op", "domain_events", ".*", "^$")
	unrouted := amqp.UnroutedQueue("domain_events")
	publishTo(t, admin, unrouted, unrouted, amqp091.Publishing{MessageId: "kept-1", Type: cardAdded, DeliveryMode: amqp091.Persistent,
		ContentType: "application/json", Timestamp: time.Now(), Body: []byte(`{}`),
		Headers: amqp091.Table{amqp.HeaderRoutingKey: cardAdded, amqp.HeaderExchange: "domain_events"}})
	opEnv := map[string]string{
		"AMQP_URL": fmt.Sprintf("amqp://unrouted-op:pw-u@127.0.0.1:%d/", node.Port),
		"EXCHANGE": "domain_events", "TOPOLOGY": "passive", "LOG_LEVEL": "info",
	}
	u := startWorker(t, opEnv, "dlq", "--unrouted", "replay")
	if code := u.wait(30 * time.Second); code != 0 {
		t.Fatalf("worker dlq --unrouted replay as the operator's user exited %d:\n%s%s", code, u.Stdout.String(), u.Stderr.String())
	}
	if k, q := nodeDepth(t, admin, unrouted), nodeDepth(t, admin, "events_a"); k != 0 || q != 2 {
		t.Errorf("after the unrouted replay: %d in %s, %d in events_a; want 0 and 2", k, unrouted, q)
	}
}

func nodeDepth(t *testing.T, ch *amqp091.Channel, q string) int {
	t.Helper()
	st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("depth of %s: %v", q, err)
	}
	return st.Messages
}
