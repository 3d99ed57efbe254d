package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestPublisher_AsAWriteOnlyUser runs the publisher's roles of
// docs/least-privilege.md ("Permission patterns") as broker users with
// exactly their patterns, on a private node: the topology owner's one
// `publisher serve` with TOPOLOGY=declare makes the shared topology;
// then, as the publisher user (configure ^$, write the exchange and its
// unrouted exchange, read ^$) with TOPOLOGY=passive, `publisher publish`
// and `publisher serve` each get a routed and an unroutable event
// confirmed. The publisher user is refused (403) on the default exchange
// (another app's queue), on declaring or deleting the shared exchange, and
// on reading the unrouted queue.
func TestPublisher_AsAWriteOnlyUser(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	userURL := func(user, pw string) string { return fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", user, pw, node.Port) }
	env := func(url string, extra ...string) []string {
		return append([]string{"AMQP_URL=" + url, "EXCHANGE=domain_events", "APP_NAME=publisher-test", "LOG_LEVEL=info",
			"PUBLISHER_KEYS=publisher-test " + ingest.HashKey(testKey)}, extra...)
	}
	node.Ctl(t, "add_user", "owner", "pw-o")
	node.Ctl(t, "set_permissions", "-p", "/", "owner", `^domain_events(\.unrouted)?$`, `^domain_events\.unrouted$`, `^domain_events\.unrouted$`)
	node.Ctl(t, "add_user", "publisher", "pw-p")
	node.Ctl(t, "set_permissions", "-p", "/", "publisher", "^$", `^domain_events(\.unrouted)?$`, "^$")

	// The topology owner's one step: `publisher serve` with
	// TOPOLOGY=declare until it is ready (it has declared), publishing
	// nothing. (`publisher publish` with no input does not connect.)
	owner, ownerBase := startServe(t, env(userURL("owner", "pw-o"), "TOPOLOGY=declare", "SHUTDOWN_TIMEOUT=5s", "METRICS_ADDR=off"))
	owner.Poll(t, time.Minute, "the owner's /readyz 200", func() bool {
		resp, _ := request(t, "GET", ownerBase+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	owner.Signal(t, syscall.SIGTERM)
	if code := owner.wait(t, time.Minute); code != 0 {
		t.Fatalf("the owner's serve exited %d; stderr:\n%s", code, owner.stderr)
	}
	ch := brokertest.ChannelAt(t, node.URL())
	for _, q := range []string{"events_a", "events_b"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.QueueBind("events_a", "CardAddedToLibraryEvent", "domain_events", false, nil); err != nil {
		t.Fatal(err)
	}

	pubURL := userURL("publisher", "pw-p")
	in := `{"type":"CardAddedToLibraryEvent","id":"routed"}` + "\n" + `{"type":"NobodyListens","id":"unrouted"}` + "\n"
	out, errOut, code := runBin(t, env(pubURL, "TOPOLOGY=passive"), strings.NewReader(in), "publish")
	if code != 0 || out != "published=2 failed=0\n" {
		t.Fatalf("publish as the write-only user: %q exit %d\n%s", out, code, errOut)
	}

	p, base := startServe(t, env(pubURL, "TOPOLOGY=passive", "SHUTDOWN_TIMEOUT=5s", "METRICS_ADDR=off"))
	p.Poll(t, time.Minute, "/readyz 200", func() bool {
		resp, _ := request(t, "GET", base+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	resp, got := request(t, "POST", base+"/events",
		`[{"type":"CardAddedToLibraryEvent","id":"served"},{"type":"NobodyListens","id":"served-unrouted"}]`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST as the write-only user: %d %v, want 202", resp.StatusCode, got)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	for q, want := range map[string]int{"events_a": 2, amqp.UnroutedQueue("domain_events"): 2, "events_b": 0} {
		st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil || st.Messages != want {
			t.Errorf("%s holds %d (%v), want %d", q, st.Messages, err, want)
		}
	}

	conn, err := amqp091.Dial(pubURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	refused := map[string]func(*amqp091.Channel) error{
		"publish into events_b through the default exchange": func(ch *amqp091.Channel) error {
			closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
			if err := ch.PublishWithContext(context.Background(), "", "events_b", false, false, amqp091.Publishing{Body: []byte(`{}`)}); err != nil {
				return err
			}
			// The refusal comes as the channel's close.
			return waitClose(closed)
		},
		"declare domain_events": func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclare("domain_events", "topic", true, false, false, false, nil)
		},
		"delete domain_events": func(ch *amqp091.Channel) error { return ch.ExchangeDelete("domain_events", false, false) },
		"read the unrouted queue": func(ch *amqp091.Channel) error {
			_, _, err := ch.Get(amqp.UnroutedQueue("domain_events"), false)
			return err
		},
	}
	for what, op := range refused {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		var aerr *amqp091.Error
		if err := op(ch); !asAMQP(err, &aerr) || aerr.Code != amqp091.AccessRefused {
			t.Errorf("the publisher user could %s: %v, want 403", what, err)
		}
	}
}

// waitClose returns the error the broker closed a channel with.
func waitClose(closed <-chan *amqp091.Error) error {
	select {
	case e := <-closed:
		if e == nil {
			return fmt.Errorf("channel closed without an error")
		}
		return e
	case <-time.After(10 * time.Second):
		return fmt.Errorf("channel still open")
	}
}

func asAMQP(err error, target **amqp091.Error) bool {
	e, ok := err.(*amqp091.Error)
	if ok {
		*target = e
	}
	return ok
}
