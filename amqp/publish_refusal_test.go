package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// refusalNode is a private node with exchange ex (and queue ex+".all" bound
// to it for "#", to count what was routed) and a user "pub" that may
// configure everything (the Publisher declares its exchange) and write and
// read nothing but its unrouted queue and exchange, which a Publisher with
// TopologyDeclare binds on every connect (write on the queue, read on the
// exchange: one name, docs/least-privilege.md).
func refusalNode(t *testing.T, ex string) (*brokertest.Node, *amqp091.Channel) {
	t.Helper()
	node := brokertest.StartNode(t)
	admin := brokertest.ChannelAt(t, node.URL())
	must(t, admin.ExchangeDeclare(ex, amqp091.ExchangeTopic, true, false, false, false, nil))
	_, err := admin.QueueDeclare(ex+".all", true, false, false, false, quorum())
	must(t, err)
	must(t, admin.QueueBind(ex+".all", "#", ex, false, nil))
	node.Ctl(t, "add_user", "pub", "pw-pub")
	node.Ctl(t, "set_permissions", "-p", "/", "pub", ".*", unroutedOnly(ex), unroutedOnly(ex))
	return node, admin
}

// unroutedOnly is the pattern of ex's unrouted queue and exchange alone.
func unroutedOnly(ex string) string {
	return "^" + regexp.QuoteMeta(amqp.UnroutedQueue(ex)) + "$"
}

func userURL(node *brokertest.Node, user string) string {
	return fmt.Sprintf("amqp://%s:pw-%s@127.0.0.1:%d/", user, user, node.Port)
}

// refusedPublisher starts a Publisher as user on node; rec counts its lines.
func refusedPublisher(t *testing.T, cfg amqp.PublisherConfig, msg string) (*amqp.Publisher, *attempts) {
	t.Helper()
	rec := &attempts{Handler: testLogger(t).Handler(), msg: msg}
	cfg.Logger = slog.New(rec)
	p, err := amqp.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p, rec
}

// wantRefused checks that err is ErrAccessRefused naming the exchange and
// the missing write permission.
func wantRefused(t *testing.T, what string, err error, ex string) {
	t.Helper()
	if !errors.Is(err, amqp.ErrAccessRefused) || !amqp.IsPublishRefusal(err) ||
		!strings.Contains(err.Error(), fmt.Sprintf("write permission on exchange %q", ex)) {
		t.Fatalf("%s = %v; want ErrAccessRefused naming write permission on exchange %q", what, err, ex)
	}
}

// A user that may log in but not write to the exchange: with StopOnRefusal
// (the CLIs) every publish of the run fails with ErrAccessRefused naming the
// exchange and the permission, at once, none is reported confirmed, and the
// Publisher stops without reconnecting.
func TestPublisher_RefusedWriteStops(t *testing.T) {
	ex := "refused_" + brokertest.Name(t)
	node, admin := refusalNode(t, ex)
	p, lost := refusedPublisher(t, amqp.PublisherConfig{URL: userURL(node, "pub"), Exchange: ex, StopOnRefusal: true},
		"broker refused a publish and closed the channel; publishes there fail until it takes them, checked on each reconnect")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs := make([]event.Event, 20)
	for i := range evs {
		evs[i] = ev("RefusedEvent", "agg", i)
	}
	start := time.Now()
	err := p.PublishBatch(ctx, evs)
	var batch *amqp.BatchError
	if !errors.As(err, &batch) || batch.Failed != len(evs) {
		t.Fatalf("PublishBatch = %v; want all %d failed", err, len(evs))
	}
	for i, e := range batch.Errs {
		wantRefused(t, fmt.Sprintf("event %d", i), e, ex)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the refusal took %v: it waited for the context", took)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher did not stop on the refused publish")
	}
	wantRefused(t, "Err", p.Err(), ex)
	wantRefused(t, "Publish after the stop", p.Publish(ctx, ev("RefusedEvent", "agg", 99)), ex)
	if n := len(lost.times()); n != 0 {
		t.Errorf("%d reconnects logged; with StopOnRefusal it stops at the first refusal", n)
	}
	if got := depth(t, admin, ex+".all"); got != 0 {
		t.Errorf("%d messages routed, none confirmed", got)
	}
}

// The same user in a server (no StopOnRefusal): the refused publishes fail
// at once with the refusal, the Publisher stays up and stays disconnected
// (each reconnect probes the refusal first, so it does not go ready to be
// refused again), new publishes fail at once too, and once the permission is
// granted it connects and publishes. The probes route nothing.
func TestPublisher_RefusedWriteRecoversOnGrant(t *testing.T) {
	ex := "refused_" + brokertest.Name(t)
	node, admin := refusalNode(t, ex)
	p, failed := refusedPublisher(t, amqp.PublisherConfig{URL: userURL(node, "pub"), Exchange: ex,
		Backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}}, "broker connection failed; retrying")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokertest.Eventually(t, 15*time.Second, "connected", p.Connected)
	start := time.Now()
	wantRefused(t, "Publish", p.Publish(ctx, ev("RefusedEvent", "agg", 1)), ex)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the refusal took %v: it waited for the context", took)
	}
	brokertest.Eventually(t, 15*time.Second, "3 reconnects refused by the probe", func() bool { return len(failed.times()) >= 3 })
	at := failed.times()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 40*time.Millisecond {
			t.Errorf("reconnect %d came %v after the one before: no backoff", i+1, gap)
		}
	}
	for range 10 {
		if p.Connected() {
			t.Fatal("connected again while the broker still refuses: readiness would flap")
		}
		wantRefused(t, "LastError", p.LastError(), ex)
		began := time.Now()
		wantRefused(t, "Publish while refused", p.Publish(ctx, ev("RefusedEvent", "agg", 2)), ex)
		if took := time.Since(began); took > time.Second {
			t.Fatalf("a publish while refused took %v; it should fail at once", took)
		}
		time.Sleep(50 * time.Millisecond) // sample the state over several reconnects
	}
	if got := depth(t, admin, ex+".all"); got != 0 {
		t.Errorf("%d messages routed while refused (the probes must route nothing)", got)
	}
	select {
	case <-p.Done():
		t.Fatalf("the publisher stopped (%v); a server keeps retrying", p.Err())
	default:
	}

	node.Ctl(t, "set_permissions", "-p", "/", "pub", ".*", ".*", unroutedOnly(ex))
	brokertest.Eventually(t, 15*time.Second, "connected after the grant", p.Connected)
	if err := p.Publish(ctx, ev("RefusedEvent", "agg", 3)); err != nil {
		t.Fatalf("Publish after the grant = %v", err)
	}
	if p.LastError() != nil {
		t.Errorf("LastError = %v after the recovery", p.LastError())
	}
	brokertest.Eventually(t, 10*time.Second, "exactly the one confirmed message routed", func() bool {
		return depth(t, admin, ex+".all") == 1
	})
}

// An exchange deleted under a connected Publisher: the publish fails with
// ErrTopologyMissing naming it, not a reconnect-and-republish loop; the
// reconnect declares it again and the next publish goes through.
func TestPublisher_ExchangeDeletedFailsThePublish(t *testing.T) {
	ex := "refused_" + brokertest.Name(t)
	node, admin := refusalNode(t, ex)
	node.Ctl(t, "set_permissions", "-p", "/", "pub", ".*", ".*", unroutedOnly(ex))
	p, _ := refusedPublisher(t, amqp.PublisherConfig{URL: userURL(node, "pub"), Exchange: ex,
		Backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}}, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokertest.Eventually(t, 15*time.Second, "connected", p.Connected)
	must(t, admin.ExchangeDelete(ex, false, false))
	err := p.Publish(ctx, ev("GoneEvent", "agg", 1))
	if !errors.Is(err, amqp.ErrTopologyMissing) || !amqp.IsPublishRefusal(err) || !strings.Contains(err.Error(), fmt.Sprintf("exchange %q", ex)) {
		t.Fatalf("Publish to a deleted exchange = %v; want ErrTopologyMissing naming it", err)
	}
	brokertest.Eventually(t, 15*time.Second, "a publish goes through after the reconnect declared it", func() bool {
		return p.Publish(ctx, ev("GoneEvent", "agg", 2)) == nil
	})
}

// Topic permissions that refuse one routing key fail the publishes with that
// key, not the others: the Publisher reconnects for them.
func TestPublisher_RefusedTopicFailsOnlyThatKey(t *testing.T) {
	ex := "refused_" + brokertest.Name(t)
	node, _ := refusalNode(t, ex)
	node.Ctl(t, "set_permissions", "-p", "/", "pub", ".*", ".*", unroutedOnly(ex))
	node.Ctl(t, "set_topic_permissions", "-p", "/", "pub", ex, "^AllowedEvent$", "^$")
	p, _ := refusedPublisher(t, amqp.PublisherConfig{URL: userURL(node, "pub"), Exchange: ex,
		Backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}}, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.Publish(ctx, ev("ForbiddenEvent", "agg", 1))
	if !errors.Is(err, amqp.ErrAccessRefused) || !strings.Contains(err.Error(), `routing key "ForbiddenEvent"`) {
		t.Fatalf("Publish with a refused key = %v; want ErrAccessRefused naming the key", err)
	}
	if err := p.Publish(ctx, ev("AllowedEvent", "agg", 2)); err != nil {
		t.Fatalf("Publish with an allowed key after the refusal = %v", err)
	}
}

// A user that may write to the exchange but not to its unrouted exchange,
// where the copies of unroutable events go (TOPOLOGY=passive: an
// administrator declared the topology; a Publisher with TopologyDeclare
// could not even bind the unrouted queue without write on that name): an
// unroutable event fails with the refusal (it cannot be kept), at once, and
// routable events still go through: the Publisher reconnects for them
// rather than waiting for the grant.
func TestPublisher_UnroutedCopyRefusedFailsOnlyIt(t *testing.T) {
	ex := "refused_" + brokertest.Name(t)
	node, admin := refusalNode(t, ex)
	lonely := ex + ".lonely" // bound to nothing
	declarer, err := amqp.NewPublisher(amqp.PublisherConfig{URL: node.URL(), Exchange: lonely, Logger: testLogger(t)})
	must(t, err)
	must(t, declarer.Start(context.Background()))
	brokertest.Eventually(t, 15*time.Second, "the administrator's Publisher declared the topology", declarer.Connected)
	must(t, declarer.Stop(context.Background()))
	node.Ctl(t, "set_permissions", "-p", "/", "pub", "^$", "^"+regexp.QuoteMeta(lonely)+"$", "^$")
	p, _ := refusedPublisher(t, amqp.PublisherConfig{URL: userURL(node, "pub"), Exchange: lonely, Topology: amqp.TopologyPassive,
		Backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}}, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokertest.Eventually(t, 15*time.Second, "connected", p.Connected)
	wantRefused(t, "Publish of an unroutable event", p.Publish(ctx, ev("NobodyEvent", "agg", 1)), amqp.UnroutedQueue(lonely))
	_, err = admin.QueueDeclare(lonely+".q", true, false, false, false, quorum())
	must(t, err)
	must(t, admin.QueueBind(lonely+".q", "RoutedEvent", lonely, false, nil))
	brokertest.Eventually(t, 15*time.Second, "a routable event goes through", func() bool {
		return p.Publish(ctx, ev("RoutedEvent", "agg", 2)) == nil
	})
	if got := p.Unrouted(); got != 0 {
		t.Errorf("Unrouted = %d; the copy was refused", got)
	}
}
