package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

// ownNames is the pattern of app a's queues and exchange
// (docs/least-privilege.md, "Permission patterns").
const ownNames = `events_a(\.hops|\.dead|\.retry\.[0-9][0-9.hms]*)?`

// scopedWorld is a private node with the shared topology declared by an
// administrator (the topology owner) and broker users for app a's worker and
// for a publisher with exactly the permissions docs/least-privilege.md gives
// them.
type scopedWorld struct {
	node   *brokertest.Node
	b      *bundle // its publisher: the scoped publisher user, TOPOLOGY=passive
	url    string  // as app a's user
	pubURL string  // as the publisher user
}

func scopedSetup(t *testing.T) scopedWorld {
	t.Helper()
	node := brokertest.StartNode(t)
	admin := brokertest.ChannelAt(t, node.URL())
	// The topology owner's one step: a Publisher with TOPOLOGY=declare,
	// as a user with exactly the owner's patterns.
	node.Ctl(t, "add_user", "owner", "pw-o")
	node.Ctl(t, "set_permissions", "-p", "/", "owner", `^domain_events(\.unrouted)?$`, `^domain_events\.unrouted$`, `^domain_events\.unrouted$`)
	owner := &bundle{url: fmt.Sprintf("amqp://owner:pw-o@127.0.0.1:%d/", node.Port), exchange: "domain_events", log: testLogger(t)}
	op := owner.publisher(t, amqp.PublisherConfig{})
	select {
	case <-op.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("the topology owner's Publisher did not connect: %v", op.LastError())
	}
	_, err := admin.QueueDeclare("events_b", true, false, false, false, quorum())
	must(t, err)
	node.Ctl(t, "add_user", "worker-a", "pw-a")
	node.Ctl(t, "set_permissions", "-p", "/", "worker-a", "^"+ownNames+"$", "^"+ownNames+"$", "^(domain_events|"+ownNames+")$")
	node.Ctl(t, "add_user", "publisher", "pw-p")
	node.Ctl(t, "set_permissions", "-p", "/", "publisher", "^$", `^domain_events(\.unrouted)?$`, "^$")
	s := scopedWorld{
		node:   node,
		url:    fmt.Sprintf("amqp://worker-a:pw-a@127.0.0.1:%d/", node.Port),
		pubURL: fmt.Sprintf("amqp://publisher:pw-p@127.0.0.1:%d/", node.Port),
	}
	s.b = &bundle{url: s.pubURL, exchange: "domain_events", log: testLogger(t)}
	return s
}

// publisher is a Publisher as the scoped publisher user, TOPOLOGY=passive.
func (s scopedWorld) publisher(t *testing.T) *amqp.Publisher {
	t.Helper()
	return s.b.publisher(t, amqp.PublisherConfig{Topology: amqp.TopologyPassive})
}

// worker starts app a's worker as its scoped user, TOPOLOGY=passive.
func (s scopedWorld) worker(t *testing.T, policy retry.Policy, h event.Handler) *amqp.Worker {
	t.Helper()
	w := workertest.Start(t, amqp.WorkerConfig{
		URL: s.url, Exchange: "domain_events", App: "a", Topology: amqp.TopologyPassive,
		EventTypes: []string{"CardAddedToLibraryEvent"}, Retry: policy, Logger: s.b.log,
		Backoff: retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}, h)
	workertest.WaitReady(t, w, 30*time.Second)
	return w
}

// flaky fails an event's first attempt, and fails for good the events whose
// data says so.
func flaky(e event.Event) error {
	if string(e.Data) == `{"n":-1}` {
		return retry.Permanent(errors.New("never"))
	}
	if e.Attempt == 1 {
		return errors.New("first attempt fails")
	}
	return nil
}

// TestWorker_ScopedUserRetriesAndDeadLetters runs app a's worker as a broker
// user that may touch only its own names (no write on amq.default, no
// configure on domain_events): it declares its topology, retries through
// its own exchange and dead-letters, and that user cannot reach another
// app's queue or delete the shared exchange.
func TestWorker_ScopedUserRetriesAndDeadLetters(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	rec := newRecorder(flaky)
	s.worker(t, retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}, rec)
	p := s.publisher(t)
	ids := publishAll(t, p, ev("CardAddedToLibraryEvent", "agg", 1), ev("CardAddedToLibraryEvent", "agg", -1))
	brokertest.Eventually(t, 20*time.Second, "the retried event handled on attempt 2", func() bool {
		return rec.count(ids[0]) == 2
	})
	admin := brokertest.ChannelAt(t, s.node.URL())
	brokertest.Eventually(t, 20*time.Second, "the permanent failure in events_a.dead", func() bool {
		return depth(t, admin, "events_a.dead") == 1
	})
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("attempts %v, want [1 2]", got)
	}

	conn, err := amqp091.Dial(s.url)
	must(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	refused := map[string]func(*amqp091.Channel) error{
		"publish into events_b through the default exchange": func(ch *amqp091.Channel) error { return publish(ch, "", "events_b") },
		"bind events_b to its own exchange": func(ch *amqp091.Channel) error {
			return ch.QueueBind("events_b", "events_b", "events_a.hops", false, nil)
		},
		"delete domain_events": func(ch *amqp091.Channel) error { return ch.ExchangeDelete("domain_events", false, false) },
		"declare domain_events": func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclare("domain_events", "topic", true, false, false, false, nil)
		},
		"declare a queue dead-lettering into events_b": func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("events_a.retry.1s", true, false, false, false, legacyArgs("events_b"))
			return err
		},
	}
	for what, op := range refused {
		ch, err := conn.Channel()
		must(t, err)
		if err := op(ch); code(err) != amqp091.AccessRefused {
			t.Errorf("app a's user could %s: %v, want 403", what, err)
		}
	}
	if got := depth(t, admin, "events_b"); got != 0 {
		t.Errorf("events_b holds %d messages, want 0", got)
	}

	// The publisher user keeps an unroutable event through the unrouted
	// exchange, without write on amq.default.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("NobodyListens", "", 1)); err != nil {
		t.Fatalf("unroutable event as the publisher user: %v", err)
	}
	if got := depth(t, admin, amqp.UnroutedQueue("domain_events")); got != 1 || p.Unrouted() != 1 {
		t.Errorf("unrouted queue holds %d (Unrouted() %d), want 1", got, p.Unrouted())
	}
}

// TestWorker_UpgradeKeepsQueuesOfAnEarlierVersion declares app a's queues as
// the previous version did (dead-lettering through the default exchange),
// with events in them, then starts this version as app a's scoped user: the
// queues keep their arguments and messages, every event is handled, retries
// come back through the old delay queue and dead letters arrive, and a delay
// queue added since is created dead-lettering through the app's exchange.
func TestWorker_UpgradeKeepsQueuesOfAnEarlierVersion(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	admin := brokertest.ChannelAt(t, s.node.URL())
	old := 50 * time.Millisecond
	// The previous version's arguments (topology.go before the app's exchange).
	main := legacyArgs("events_a.dead")
	main["x-delivery-limit"] = int64(amqp.DefaultDeliveryLimit)
	_, err := admin.QueueDeclare("events_a", true, false, false, false, main)
	must(t, err)
	delay := legacyArgs("events_a")
	delay[amqp091.QueueMessageTTLArg] = old.Milliseconds()
	_, err = admin.QueueDeclare(amqp.RetryQueue("events_a", old), true, false, false, false, delay)
	must(t, err)
	_, err = admin.QueueDeclare("events_a.dead", true, false, false, false, quorum())
	must(t, err)
	must(t, admin.QueueBind("events_a", "CardAddedToLibraryEvent", "domain_events", false, nil))
	p := s.publisher(t)
	ids := publishAll(t, p, ev("CardAddedToLibraryEvent", "agg", 1), ev("CardAddedToLibraryEvent", "agg", -1))
	if got := depth(t, admin, "events_a"); got != 2 {
		t.Fatalf("events_a holds %d before the upgrade, want 2", got)
	}
	// A retry the previous version's worker had sent through the default
	// exchange (its delay queue dead-letters it to events_a through "",
	// which the broker does for no user), and a dead letter it had made.
	must(t, admin.Confirm(false))
	for q, m := range map[string]amqp091.Publishing{
		amqp.RetryQueue("events_a", old): {MessageId: "old-retry", Type: "CardAddedToLibraryEvent", Body: []byte(`{"n":7}`),
			Headers: amqp091.Table{amqp.HeaderAttempt: int32(2), amqp.HeaderRoutingKey: "CardAddedToLibraryEvent", amqp.HeaderExchange: "domain_events"}},
		"events_a.dead": {MessageId: "old-dead", Type: "CardAddedToLibraryEvent", Body: []byte(`{"n":8}`)},
	} {
		dc, err := admin.PublishWithDeferredConfirm("", q, true, false, m)
		must(t, err)
		if !dc.Wait() {
			t.Fatalf("seeding %s not confirmed", q)
		}
	}

	// Attempts 1 and 2 fail: the event goes through the old delay queue,
	// then through the added one.
	rec := newRecorder(func(e event.Event) error {
		if err := flaky(e); err != nil || e.Attempt >= 3 {
			return err
		}
		return errors.New("second attempt fails too")
	})
	added := 80 * time.Millisecond
	s.worker(t, retry.Policy{Delays: []time.Duration{old, added}, MaxAttempts: 4}, rec)
	brokertest.Eventually(t, 20*time.Second, "the waiting event retried through both delay queues", func() bool {
		return rec.count(ids[0]) == 3
	})
	brokertest.Eventually(t, 20*time.Second, "the previous version's retry handled after one more", func() bool {
		return rec.count("old-retry") == 2
	})
	brokertest.Eventually(t, 20*time.Second, "the permanent failure in events_a.dead, next to the old dead letter", func() bool {
		return depth(t, admin, "events_a.dead") == 2
	})
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("attempts %v, want [1 2 3]", got)
	}
	if got := rec.attempts("old-retry"); fmt.Sprint(got) != "[2 3]" {
		t.Errorf("attempts of the previous version's retry %v, want [2 3]", got)
	}
	// The old queues kept their arguments: declaring them as before passes.
	probe := brokertest.ChannelAt(t, s.node.URL())
	_, err = probe.QueueDeclare(amqp.RetryQueue("events_a", old), true, false, false, false, delay)
	must(t, err)
	_, err = probe.QueueDeclare("events_a", true, false, false, false, main)
	must(t, err)
	// The added delay queue was created dead-lettering through the app's
	// exchange: the old arguments are refused for it.
	addedArgs := legacyArgs("events_a")
	addedArgs[amqp091.QueueMessageTTLArg] = added.Milliseconds()
	_, err = probe.QueueDeclare(amqp.RetryQueue("events_a", added), true, false, false, false, addedArgs)
	if code(err) != amqp091.PreconditionFailed {
		t.Errorf("the added delay queue takes the old arguments (%v): want it created with x-dead-letter-exchange events_a.hops", err)
	}
}
