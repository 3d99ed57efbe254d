package amqp_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestBroker_WhatPermissionsAreChecked measures, on a private node, what
// RabbitMQ checks for the operations eventfleet's binaries perform, with users
// scoped the way docs/least-privilege.md proposes for app "a". Each case logs
// the fact it measured; a failure means the broker checks something else than
// the design assumes (measured on 3.10.8).
func TestBroker_WhatPermissionsAreChecked(t *testing.T) {
	node := brokertest.StartNode(t)
	admin := brokertest.ChannelAt(t, node.URL())

	// What an earlier worker and publisher left on the broker, declared by
	// an administrator (guest): the shared exchange, another app's queue,
	// app a's dead queue and a queue of app a with today's arguments.
	must(t, admin.ExchangeDeclare("domain_events", amqp091.ExchangeTopic, true, false, false, false, nil))
	must(t, admin.ExchangeDeclare("events_a.hops", amqp091.ExchangeDirect, true, false, false, false, nil))
	must(t, admin.ExchangeDeclare("other_dlx", amqp091.ExchangeDirect, true, false, false, false, nil))
	for _, q := range []string{"events_b", "events_a.dead"} {
		_, err := admin.QueueDeclare(q, true, false, false, false, quorum())
		must(t, err)
	}
	_, err := admin.QueueDeclare("events_a.old", true, false, false, false, legacyArgs("events_a.dead"))
	must(t, err)
	must(t, admin.QueueBind("events_a.old", "events_a.old", "events_a.hops", false, nil))

	const own = `^events_a(\..*)?$`
	users := map[string][3]string{ // configure, write, read
		// The proposed worker user of app a: nothing outside its own names
		// but read on the shared exchange, to bind its queue to it.
		"scoped": {own, own, `^(domain_events|events_a(\..*)?)$`},
		// Today's worker needs: write on the default exchange as well.
		"defaultw": {own, `^(amq\.default|events_a(\..*)?)$`, `^(domain_events|events_a(\..*)?)$`},
		"noread":   {own, own, own},                                     // no read on domain_events
		"nowrite":  {own, `^events_a\.hops$`, own + `|^domain_events$`}, // no write on its queues
		"noqread":  {own, own, `^domain_events$`},                       // no read on its queues
		"nothing":  {"^$", "^$", "^$"},
		// The proposed publisher user: write on the exchange only.
		"publisher": {"^$", `^domain_events(\.unrouted)?$`, "^$"},
	}
	for u, p := range users {
		node.Ctl(t, "add_user", u, "pw-"+u)
		node.Ctl(t, "set_permissions", "-p", "/", u, p[0], p[1], p[2])
	}
	as := func(user string) *amqp091.Channel {
		t.Helper()
		conn, err := amqp091.Dial(fmt.Sprintf("amqp://%s:pw-%s@127.0.0.1:%d/", user, user, node.Port))
		if err != nil {
			t.Fatalf("dial as %s: %v", user, err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	declare := func(user, q string, args amqp091.Table) error {
		_, err := as(user).QueueDeclare(q, true, false, false, false, args)
		return err
	}

	cases := []struct {
		fact string
		op   func() error
		want int // 0 for success, else the AMQP reply code
	}{
		{"declaring a NEW queue with x-dead-letter-exchange \"\" needs write on amq.default",
			func() error { return declare("scoped", "events_a.n1", legacyArgs("events_a.dead")) }, amqp091.AccessRefused},
		{"... and with it, the new queue is declared",
			func() error { return declare("defaultw", "events_a.n2", legacyArgs("events_a.dead")) }, 0},
		{"RE-declaring an existing queue with x-dead-letter-exchange \"\" (same args) needs configure only",
			func() error { return declare("scoped", "events_a.old", legacyArgs("events_a.dead")) }, 0},
		{"declaring a new queue with another DLX needs write on that exchange",
			func() error { return declare("scoped", "events_a.n3", dlxArgs("other_dlx", "events_a.dead")) }, amqp091.AccessRefused},
		{"declaring a new queue with the app's own DLX events_a.hops works with write on it",
			func() error { return declare("scoped", "events_a.n4", dlxArgs("events_a.hops", "events_a.dead")) }, 0},
		{"declaring a new queue with a DLX also needs read on the queue itself",
			func() error { return declare("noqread", "events_a.n5", dlxArgs("events_a.hops", "events_a.dead")) }, amqp091.AccessRefused},
		{"a new queue without a DLX needs configure only (no read on it)",
			func() error { return declare("noqread", "events_a.n6", quorum()) }, 0},
		{"re-declaring an existing legacy queue with the new DLX is refused (inequivalent arg)",
			func() error { return declare("scoped", "events_a.old", dlxArgs("events_a.hops", "events_a.dead")) }, amqp091.PreconditionFailed},
		{"a passive queue declare needs no permission at all",
			func() error {
				_, err := as("nothing").QueueDeclarePassive("events_b", true, false, false, false, nil)
				return err
			}, 0},
		{"a passive exchange declare needs no permission at all",
			func() error {
				return as("nothing").ExchangeDeclarePassive("domain_events", amqp091.ExchangeTopic, true, false, false, false, nil)
			}, 0},
		{"a passive declare of a missing queue is 404 (whatever the permissions)",
			func() error {
				_, err := as("nothing").QueueDeclarePassive("events_missing", true, false, false, false, nil)
				return err
			}, amqp091.NotFound},
		{"re-declaring the shared exchange needs configure on it",
			func() error {
				return as("scoped").ExchangeDeclare("domain_events", amqp091.ExchangeTopic, true, false, false, false, nil)
			}, amqp091.AccessRefused},
		{"deleting the shared exchange needs configure on it",
			func() error { return as("scoped").ExchangeDelete("domain_events", false, false) }, amqp091.AccessRefused},
		{"binding a queue to domain_events works with write on the queue and read on the exchange",
			func() error {
				return as("scoped").QueueBind("events_a.old", "CardAddedToLibraryEvent", "domain_events", false, nil)
			}, 0},
		{"... without read on the exchange it is refused",
			func() error { return as("noread").QueueBind("events_a.old", "X", "domain_events", false, nil) }, amqp091.AccessRefused},
		{"... without write on the queue it is refused",
			func() error { return as("nowrite").QueueBind("events_a.old", "X", "domain_events", false, nil) }, amqp091.AccessRefused},
		{"binding ANOTHER app's queue to the app's own exchange is refused (write on that queue)",
			func() error { return as("scoped").QueueBind("events_b", "events_b", "events_a.hops", false, nil) }, amqp091.AccessRefused},
		{"binding the app's exchange into domain_events is refused (write on the destination)",
			func() error { return as("scoped").ExchangeBind("domain_events", "#", "events_a.hops", false, nil) }, amqp091.AccessRefused},
		{"write on amq.default alone publishes into ANOTHER app's queue, by its name",
			func() error { return publish(as("defaultw"), "", "events_b") }, 0},
		{"without write on amq.default, a publish to it is refused",
			func() error { return publish(as("scoped"), "", "events_a.old") }, amqp091.AccessRefused},
		{"the app's own exchange reaches the queues bound to it",
			func() error { return publish(as("scoped"), "events_a.hops", "events_a.old") }, 0},
		{"... and nothing else: another app's queue name as routing key is unroutable",
			func() error { return publish(as("scoped"), "events_a.hops", "events_b") }, amqp091.NoRoute},
		{"purging needs read on the queue",
			func() error {
				_, err := as("noqread").QueuePurge("events_a.old", false)
				return err
			}, amqp091.AccessRefused},
		{"a publisher with write on the exchange only (no configure, no read) publishes to it",
			func() error { return publish(as("publisher"), "domain_events", "Nobody.Bound") }, amqp091.NoRoute},
		{"consuming needs read on the queue",
			func() error {
				_, err := as("noqread").Consume("events_a.old", "", false, false, false, false, nil)
				return err
			}, amqp091.AccessRefused},
	}
	for _, c := range cases {
		err := c.op()
		if got := code(err); got != c.want {
			t.Errorf("%s: got %d (%v), want %d", c.fact, got, err, c.want)
			continue
		}
		if err != nil {
			t.Logf("measured: %s: %v", c.fact, err)
		} else {
			t.Logf("measured: %s", c.fact)
		}
	}
	if got := depth(t, admin, "events_b"); got != 1 {
		t.Errorf("events_b holds %d messages, want the 1 that write on amq.default put there", got)
	}

	// Dead-lettering is done by the queue, not by a user: a queue declared
	// by a user who may write on amq.default keeps dead-lettering into
	// another app's queue after that user is deleted, on TTL expiry and on
	// the quorum delivery limit alike. Only the declare is checked.
	ttlQ, limitQ := "events_a.ttl", "events_a.limit"
	ttl := legacyArgs("events_b")
	ttl[amqp091.QueueMessageTTLArg] = int64(50)
	must(t, declare("defaultw", ttlQ, ttl))
	limit := legacyArgs("events_b")
	limit["x-delivery-limit"] = int64(1)
	must(t, declare("defaultw", limitQ, limit))
	node.Ctl(t, "delete_user", "defaultw")
	for _, q := range []string{ttlQ, limitQ} {
		must(t, admin.Publish("", q, false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(`{}`)}))
	}
	brokertest.Eventually(t, 10*time.Second, "TTL expiry dead-letters into events_b", func() bool {
		return depth(t, admin, "events_b") == 2
	})
	for range 2 { // delivery count 2 > limit 1
		brokertest.Eventually(t, 10*time.Second, "a delivery from "+limitQ, func() bool {
			d, ok, err := admin.Get(limitQ, false)
			must(t, err)
			if ok {
				must(t, d.Nack(false, true /* requeue */))
			}
			return ok
		})
	}
	brokertest.Eventually(t, 10*time.Second, "the delivery limit dead-letters into events_b", func() bool {
		return depth(t, admin, "events_b") == 3
	})
	t.Log("measured: dead-lettering (TTL expiry, x-delivery-limit) checks no user's permissions: the declaring user was deleted")

	// Topic permissions on the shared exchange restrict binding keys too
	// (read), so an app's user can be kept to the event types it handles.
	node.Ctl(t, "set_topic_permissions", "-p", "/", "scoped", "domain_events", "^$", "^CardAddedToLibraryEvent$")
	if err := as("scoped").QueueBind("events_a.old", "#", "domain_events", false, nil); code(err) != amqp091.AccessRefused {
		t.Errorf("bind with \"#\" under topic permissions: %v, want 403", err)
	}
	if err := as("scoped").QueueBind("events_a.old", "CardAddedToLibraryEvent", "domain_events", false, nil); err != nil {
		t.Errorf("bind with an allowed key under topic permissions: %v", err)
	}
	t.Log("measured: topic permissions (read) restrict the binding keys a user may bind to domain_events")

	// And topic permissions (write) restrict the routing keys a publisher
	// may publish to domain_events with.
	node.Ctl(t, "set_topic_permissions", "-p", "/", "publisher", "domain_events", "^CardAddedToLibraryEvent$", "^$")
	if err := publish(as("publisher"), "domain_events", "LibraryOpenedEvent"); code(err) != amqp091.AccessRefused {
		t.Errorf("publish with a key outside the topic permissions: %v, want 403", err)
	}
	if err := publish(as("publisher"), "domain_events", "CardAddedToLibraryEvent"); err != nil {
		t.Errorf("publish with an allowed key (events_a.old is bound for it): %v", err)
	}
	t.Log("measured: topic permissions (write) restrict the routing keys a user may publish to domain_events with")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func quorum() amqp091.Table { return amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum} }

// legacyArgs are the dead-letter arguments every app queue carries today:
// through the default exchange, straight to a queue by name.
func legacyArgs(to string) amqp091.Table { return dlxArgs("", to) }

func dlxArgs(exchange, key string) amqp091.Table {
	return amqp091.Table{
		amqp091.QueueTypeArg:        amqp091.QueueTypeQuorum,
		"x-dead-letter-exchange":    exchange,
		"x-dead-letter-routing-key": key,
		"x-dead-letter-strategy":    "at-least-once",
		amqp091.QueueOverflowArg:    amqp091.QueueOverflowRejectPublish,
	}
}

// publish sends one mandatory, confirmed message and says how it went: nil
// when confirmed and routed, a NoRoute error when returned, the channel's
// close reason when refused.
func publish(ch *amqp091.Channel, exchange, key string) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	returned := ch.NotifyReturn(make(chan amqp091.Return, 1))
	confirmed := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	if err := ch.Publish(exchange, key, true /* mandatory */, false, /* immediate */
		amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(`{}`)}); err != nil {
		return err
	}
	var ret error
	for {
		select {
		case e := <-closed:
			return e
		case r := <-returned:
			ret = &amqp091.Error{Code: int(r.ReplyCode), Reason: r.ReplyText}
		case c := <-confirmed:
			if !c.Ack {
				// A channel the broker closes nacks what was in flight, and
				// select may see the nack first: the close is the answer.
				select {
				case e := <-closed:
					if e != nil {
						return e
					}
				case <-time.After(time.Second):
				}
				return errors.New("nacked")
			}
			// The client hands a return over before the confirm that
			// follows it, so it is here already if there was one.
			select {
			case r := <-returned:
				ret = &amqp091.Error{Code: int(r.ReplyCode), Reason: r.ReplyText}
			default:
			}
			return ret
		case <-time.After(10 * time.Second):
			return errors.New("no confirm within 10s")
		}
	}
}

// code is err's AMQP reply code, 0 for nil, -1 for any other error.
func code(err error) int {
	var e *amqp091.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Code
	}
	return -1
}

func depth(t *testing.T, ch *amqp091.Channel, q string) int {
	t.Helper()
	st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	must(t, err)
	return st.Messages
}
