package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestDLQReplay_WriteRefusedFailsFast: `worker dlq replay` as a user that may
// read the dead-letter queue but not write where replays go (the app's
// exchange events_a.hops, as a worker of this version declared it) exits 1
// at once with the refusal, naming the exchange and the permission, and
// every dead letter stays in its queue.
func TestDLQReplay_WriteRefusedFailsFast(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	conn, err := amqp091.Dial(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	quorum := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	for _, q := range []string{"events_a", "events_a.dead"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, quorum); err != nil {
			t.Fatal(err)
		}
	}
	// What a worker of this version declares: the app's exchange, bound to
	// its queue by the queue's name.
	if err := ch.ExchangeDeclare("events_a.hops", amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("events_a", "events_a", "events_a.hops", false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		if err := ch.Publish("", "events_a.dead", false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent,
			MessageId: fmt.Sprintf("dead-%d", i), Type: "DeadEvent", ContentType: "application/json", Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	depth := func() int {
		q, err := ch.QueueDeclarePassive("events_a.dead", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}
	brokertest.Eventually(t, 10*time.Second, "the dead letters in their queue", func() bool { return depth() == n })
	node.Ctl(t, "add_user", "ops", "pw-ops")
	node.Ctl(t, "set_permissions", "-p", "/", "ops", ".*", "^$", ".*")

	start := time.Now()
	r := dlqRun(t, map[string]string{"AMQP_URL": fmt.Sprintf("amqp://ops:pw-ops@127.0.0.1:%d/", node.Port),
		"APP_NAME": "a", "EXCHANGE": "domain_events", "LOG_LEVEL": "info"}, "replay")
	took := time.Since(start)
	t.Logf("exited %d after %v; stdout %q; stderr:\n%s", r.code, took, r.stdout, r.stderr)
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "amqp: access refused") || !strings.Contains(r.stderr, `write permission on exchange "events_a.hops"`) {
		t.Errorf("stderr does not name the refusal:\n%s", r.stderr)
	}
	// dlqRun gives up after 60s; before this was fixed, the replay
	// publisher reconnected and republished into the refusal until then.
	if took > 45*time.Second {
		t.Errorf("exited after %v", took)
	}
	if strings.Contains(r.stdout, "replayed  ") {
		t.Errorf("a message reported replayed:\n%s", r.stdout)
	}
	brokertest.Eventually(t, 10*time.Second, "every dead letter still in its queue", func() bool { return depth() == n })
}
