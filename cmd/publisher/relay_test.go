package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/pgtest"
	"github.com/eventfleet/eventfleet/outbox"
)

// `publisher relay migrate` makes the outbox; rows committed into it reach a
// bound queue through `publisher relay`, which drains and exits 0 on SIGTERM.
func TestRelay_MigrateThenRelayToTheBroker(t *testing.T) {
	t.Parallel()
	db := pgtest.Database(t)
	exchange := brokertest.Name(t)
	queue := exchange + "-q"
	brokertest.Cleanup(t, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	env := []string{"AMQP_URL=" + brokertest.URL(t), "EXCHANGE=" + exchange, "APP_NAME=library", "DATABASE_URL=" + db,
		"OUTBOX_POLL_INTERVAL=100ms"}

	out, stderr, code := runBin(t, env, nil, "relay", "migrate")
	if code != 0 || !strings.Contains(out, "outbox eventfleet_outbox ready") {
		t.Fatalf("relay migrate: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	if _, _, code := runBin(t, env, nil, "relay", "migrate"); code != 0 {
		t.Fatalf("a second migrate exits %d: it must be idempotent", code)
	}

	ch := brokertest.Channel(t)
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "CardAddedToLibraryEvent", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Conn(t, db)
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := outbox.Add(ctx, tx, eventFor("CardAddedToLibraryEvent", "lib-1", `{"cardId":"c-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	p := startBin(t, env, nil, "relay")
	ds, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d amqp091.Delivery
	select {
	case d = <-ds:
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing delivered; relay stderr:\n%s", p.stderr)
	}
	if d.MessageId != id || d.AppId != "library" || string(d.Body) != `{"cardId":"c-1"}` {
		t.Fatalf("delivered id %q app %q body %s, want %s", d.MessageId, d.AppId, d.Body, id)
	}
	p.Poll(t, 20*time.Second, "the row settled", func() bool {
		var n int
		return conn.QueryRow(ctx, "SELECT count(*) FROM eventfleet_outbox").Scan(&n) == nil && n == 0
	})
	p.Signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "secret") {
		t.Fatal("stderr shows a password")
	}
}

func TestRelay_BadSettingsExit2NamingTheVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, "DATABASE_URL"},
		{[]string{"DATABASE_URL=mysql://u:secret@h/db"}, "DATABASE_URL"},
		{[]string{"DATABASE_URL=postgres://u:secret@h/db", "OUTBOX_FORMAT=kafka"}, "OUTBOX_FORMAT"},
		{[]string{"DATABASE_URL=postgres://u:secret@h/db", "OUTBOX_TABLE=Bad-Name"}, "OUTBOX_TABLE"},
		{[]string{"DATABASE_URL=postgres://u:secret@h/db", "OUTBOX_BATCH=0"}, "OUTBOX_BATCH"},
		{[]string{"DATABASE_URL=postgres://u:secret@h/db", "OUTBOX_POLL_INTERVAL=soon"}, "OUTBOX_POLL_INTERVAL"},
		{[]string{"DATABASE_URL=host=h user=u password=secret dbname=d", "OUTBOX_RETENTION=-1h"}, "OUTBOX_RETENTION"},
	} {
		_, stderr, code := runBin(t, tt.env, nil, "relay")
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("env %v: exit %d, stderr %q; want 2 naming %s", tt.env, code, stderr, tt.want)
		}
		if strings.Contains(stderr, "secret") {
			t.Errorf("env %v: stderr shows the password: %q", tt.env, stderr)
		}
	}
	if _, stderr, code := runBin(t, nil, nil, "relay", "sideways"); code != 2 || !strings.Contains(stderr, `"sideways"`) {
		t.Errorf("relay sideways: exit %d, stderr %q", code, stderr)
	}
}

func eventFor(typ, agg, data string) event.Event {
	return event.Event{Type: typ, AggregateID: agg, Data: []byte(data)}
}

// An operator lists a set-aside row, retries one, discards another.
func TestRelay_SetAsideCommands(t *testing.T) {
	t.Parallel()
	db := pgtest.Database(t)
	env := []string{"DATABASE_URL=" + db}
	if _, stderr, code := runBin(t, env, nil, "relay", "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	conn := pgtest.Conn(t, db)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data) VALUES ('e1', 'a', 'T', '{}'), ('e2', 'b', 'T', '{}');
		INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts) SELECT seq::text, aggregate_id, 'refused', 10 FROM eventfleet_outbox`); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runBin(t, env, nil, "relay", "set-aside", "list")
	if code != 0 || strings.Count(out, `"reason":"refused"`) != 2 {
		t.Fatalf("list: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	if _, stderr, code := runBin(t, env, nil, "relay", "set-aside", "discard"); code != 2 || !strings.Contains(stderr, "--all") {
		t.Fatalf("discard without rows: exit %d, stderr %q; want 2 asking for rows or --all", code, stderr)
	}
	if out, _, code := runBin(t, env, nil, "relay", "set-aside", "retry", "1"); code != 0 || !strings.Contains(out, "released 1") {
		t.Fatalf("retry 1: exit %d, %q", code, out)
	}
	if out, _, code := runBin(t, env, nil, "relay", "set-aside", "discard", "--all"); code != 0 || !strings.Contains(out, "discarded 1") {
		t.Fatalf("discard --all: exit %d, %q", code, out)
	}
	var ids []string
	rows, err := conn.Query(ctx, "SELECT id FROM eventfleet_outbox")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	if len(ids) != 1 || ids[0] != "e1" {
		t.Fatalf("outbox rows %v, want e1 (released) only", ids)
	}
}
