package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestDLQ_UnreadableAndOversizedMessages: a dead-letter queue holding a
// message with a header the Go client cannot read used to make every
// `worker dlq` command fail (the connection died with FRAME_ERROR), so an
// operator could not even remove it. A body over WORKER_MAX_BODY is now
// rejected by the worker and moved by the broker; dlq names it oversized,
// does not load it, and replay keeps it unless the limit is raised.
func TestDLQ_UnreadableAndOversizedMessages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	env := a.env(t, "WORKER_MAX_BODY=1048576")
	w := startWorker(t, env)
	w.waitConsuming()

	big := `"` + strings.Repeat("y", 2<<20) + `"`
	publish(t, a.exchange, message{id: "big-1", typ: cardAdded, body: big})
	waitDepth(t, a.dead, 1, 30*time.Second)
	deep := amqp091.Table{"bottom": "x"}
	for range 39 {
		deep = amqp091.Table{"n": deep}
	}
	h := amqp091.Table{"deep": deep, amqp.HeaderRoutingKey: cardAdded, amqp.HeaderExchange: a.exchange}
	amqp.MarkDead(h, amqp.ReasonExhausted, a.name, "boom", time.Now())
	ok := amqp091.Table{amqp.HeaderRoutingKey: cardAdded, amqp.HeaderExchange: a.exchange}
	amqp.MarkDead(ok, amqp.ReasonExhausted, a.name, "boom", time.Now())
	publishTo(t, brokertest.Channel(t), "", a.dead,
		amqp091.Publishing{Headers: h, MessageId: "deep-1", Type: cardAdded, ContentType: "application/json", Body: []byte(`{"d":1}`)},
		amqp091.Publishing{Headers: ok, MessageId: "ok-1", Type: cardAdded, ContentType: "application/json", Body: []byte(`{"o":1}`)})
	waitDepth(t, a.dead, 3, 30*time.Second)

	dlqRun(t, env, "list").expect(t, 0, a.dead+": 3 dead letters", "oversized  1", "exhausted  2",
		"unreadable headers: 1")

	r := dlqRun(t, env, "peek", "-o", "json")
	r.expect(t, 0)
	var peeked []struct {
		ID           string          `json:"id"`
		Reason       string          `json:"reason"`
		Unreadable   string          `json:"unreadable_headers"`
		WithheldBody int64           `json:"withheld_body"`
		Body         json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &peeked); err != nil || len(peeked) != 3 {
		t.Fatalf("peek -o json: %v\n%s", err, r.stdout)
	}
	for _, m := range peeked {
		switch m.ID {
		case "big-1":
			if m.Reason != "oversized" || m.WithheldBody != int64(len(big)) || len(m.Body) > 4 {
				t.Errorf("big-1: reason %q, withheld %d, body %d bytes", m.Reason, m.WithheldBody, len(m.Body))
			}
		case "deep-1":
			var body bytes.Buffer
			if m.Unreadable != "deep" || json.Compact(&body, m.Body) != nil || body.String() != `{"d":1}` {
				t.Errorf("deep-1: unreadable %q, body %s", m.Unreadable, m.Body)
			}
		}
	}
	dlqRun(t, env, "peek", "--id", "big-1").expect(t, 0, "reason:      oversized", "not read: 2097154 bytes")
	dlqRun(t, env, "peek", "--id", "deep-1").expect(t, 0, "unreadable:  deep")

	dlqRun(t, env, "purge", "--id", "deep-1", "--yes").expect(t, 0, "purged  deep-1")
	waitDepth(t, a.dead, 2, 30*time.Second)

	// The oversized one stays: a copy without its body would lose the event.
	r = dlqRun(t, env, "replay")
	if r.code == 0 || !strings.Contains(r.stdout, "big-1") || !strings.Contains(r.stdout, "body not read") {
		t.Errorf("replay: exit %d, want it to keep big-1 saying why\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	waitDepth(t, a.dead, 1, 30*time.Second)
	dlqRun(t, a.env(t, "WORKER_MAX_BODY=4194304"), "replay", "--dry-run").expect(t, 0, "big-1")
}
