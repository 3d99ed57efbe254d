package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

func TestTermSafe(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"card-9", "card-9"},
		{"Grüße, 世界 \uFFFD", "Grüße, 世界 \uFFFD"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"x\n  reason:      FAKE\n", `x\n  reason:      FAKE\n`},
		{"tab\tcr\rnul\x00del\x7f", `tab\tcr\rnul\x00del\x7f`},
		{"c1 \u009b31m \u0085", `c1 \u009b31m \u0085`},
		{"bad \xff\xfe utf8 \xe2\x82", `bad \xff\xfe utf8 \xe2\x82`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.in); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// forgedID is an id a hostile publisher set: it clears the screen and forges
// a reason line in raw output.
const forgedID = "evil\x1b[2J\x1b[H\n  reason:      FAKE-REASON\n\u009b31m"

// TestDLQ_ControlCharactersAreEscaped: peek, replay --dry-run, purge and
// list print no control character from a message, and forge no line.
func TestDLQ_ControlCharactersAreEscaped(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	seedDead(t, a, time.Now().Add(-time.Hour))
	ch := brokertest.Channel(t)
	h := amqp091.Table{amqp.HeaderRoutingKey: cardAdded, amqp.HeaderExchange: a.exchange,
		"aggregate_id": "agg\r\n  attempts:    99"}
	amqp.MarkDead(h, amqp.ReasonPermanent, a.name, "boom\x1b]0;pwned\x07", time.Now())
	publishTo(t, ch, "", a.dead, amqp091.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp091.Persistent,
		MessageId: forgedID, Type: cardAdded + "\x1b[8m", AppId: "app\x00", Timestamp: time.Now(), Body: []byte(`{"s":"\u001b[2J"}`)})
	env := a.env(t)

	check := func(name, out string) {
		t.Helper()
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && isControl(r) }); i >= 0 {
			t.Errorf("%s prints control character %q at %d:\n%s", name, out[i], i, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "reason:") && strings.Contains(l, "FAKE") ||
				strings.HasPrefix(strings.TrimSpace(l), "attempts:    99") {
				t.Errorf("%s prints a forged line %q:\n%s", name, l, out)
			}
		}
	}
	r := dlqRun(t, env, "peek")
	r.expect(t, 0, `id:          evil\x1b[2J\x1b[H\n  reason:      FAKE-REASON\n\u009b31m`, "reason:      permanent",
		`last error:  boom\x1b]0;pwned\a`)
	check("peek", r.stdout)
	r = dlqRun(t, env, "replay", "--dry-run")
	r.expect(t, 0, `would replay  evil\x1b[2J`, "dry run: would replay 1 dead letter")
	check("replay --dry-run", r.stdout)
	r = dlqRun(t, env, "list")
	r.expect(t, 0, `CardAddedToLibraryEvent\x1b[8m  1`)
	check("list", r.stdout)

	// JSON keeps the id exactly, and escapes C1 controls too.
	r = dlqRun(t, env, "peek", "-o", "json")
	r.expect(t, 0, `\u009b`)
	check("peek -o json", r.stdout)
	var peeked []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &peeked); err != nil || len(peeked) != 1 || peeked[0].ID != forgedID {
		t.Errorf("peek -o json: %+v, %v", peeked, err)
	}

	r = dlqRun(t, env, "purge", "--id", forgedID, "--yes")
	r.expect(t, 0, `purged  evil\x1b[2J`, "purged 1 dead letter")
	check("purge", r.stdout)
}
