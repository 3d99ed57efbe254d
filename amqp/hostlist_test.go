package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

// slowBackoff is longer than any move between nodes may take: a list's
// next node is tried at once, and only a round of failures backs off.
var slowBackoff = retry.Backoff{Min: 20 * time.Second, Max: 20 * time.Second}

// With a dead node listed first (and the start at it), a Publisher and a
// Worker connect to the live one at once and say which one they use.
func TestPublisherAndWorker_ListSkipsADeadNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dead := brokertest.FreePort(t)
	list := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/,%s", dead, b.url)
	q := bindTap(t, b.exchange, "#")

	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: list, Exchange: b.exchange, Logger: b.log, Backoff: slowBackoff})
	if err != nil {
		t.Fatal(err)
	}
	amqp.StartAt(p, 0)
	if got, want := p.Node(), "127.0.0.1:"+strconv.Itoa(dead); got != want {
		t.Fatalf("Node before Start = %q, want the first to try, %q", got, want)
	}
	startPublisher(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("Listed", "", 1)); err != nil {
		t.Fatalf("publish over (dead, live): %v", err)
	}
	if got := p.Node(); got != "127.0.0.1:5672" {
		t.Errorf("publisher Node = %q, want 127.0.0.1:5672", got)
	}
	if n := len(brokertest.Drain(t, q, 1, 200*time.Millisecond)); n != 1 {
		t.Errorf("%d events in the tap, want 1", n)
	}

	app := brokertest.Name(t)
	b.cleanupApp(t, app, retry.Policy{})
	w := newListWorker(t, amqp.WorkerConfig{URL: list, Exchange: b.exchange, App: app, Logger: b.log, Backoff: slowBackoff}, newRecorder(nil), 0)
	workertest.WaitReady(t, w, 10*time.Second) // well within the backoff
	if got := w.Node(); got != "127.0.0.1:5672" {
		t.Errorf("worker Node = %q, want 127.0.0.1:5672", got)
	}
}

// A node killed under a Publisher and a Worker: both move to the next node
// of the list without waiting a backoff, and events flow there.
func TestPublisherAndWorker_NodeKilledMoveToTheNextNode(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	b := setup(t) // the shared broker is the list's second node
	list := node.URL() + "," + b.url
	private := "127.0.0.1:" + strconv.Itoa(node.Port)
	app := brokertest.Name(t)
	b.cleanupApp(t, app, retry.Policy{})
	rec := newRecorder(nil)
	w := newListWorker(t, amqp.WorkerConfig{URL: list, Exchange: b.exchange, App: app, Logger: b.log, Backoff: slowBackoff}, rec, 0)
	workertest.WaitReady(t, w, 20*time.Second)
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: list, Exchange: b.exchange, Logger: b.log, Backoff: slowBackoff})
	if err != nil {
		t.Fatal(err)
	}
	amqp.StartAt(p, 0)
	startPublisher(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("BeforeKill", "", 1)); err != nil {
		t.Fatal(err)
	}
	if p.Node() != private || w.Node() != private {
		t.Fatalf("publisher on %s, worker on %s; want both on the first node, %s", p.Node(), w.Node(), private)
	}
	brokertest.Eventually(t, 10*time.Second, "the worker handles the event on the first node", func() bool { return rec.distinct() == 1 })

	node.Kill(t)
	killed := time.Now()
	brokertest.Eventually(t, 10*time.Second, "the worker consumes from the second node", func() bool {
		return w.Consuming() && w.Node() == "127.0.0.1:5672"
	})
	if err := p.Publish(ctx, ev("AfterKill", "", 2)); err != nil {
		t.Fatalf("publish after the first node was killed: %v", err)
	}
	if got := p.Node(); got != "127.0.0.1:5672" {
		t.Errorf("publisher Node after the kill = %q, want 127.0.0.1:5672", got)
	}
	brokertest.Eventually(t, 10*time.Second, "the worker handles the event on the second node", func() bool { return rec.distinct() == 2 })
	if took := time.Since(killed); took >= slowBackoff.Min {
		t.Errorf("moving took %v: it waited a backoff (%v)", took, slowBackoff.Min)
	}
	t.Logf("publisher and worker moved and handled an event %v after the kill", time.Since(killed).Round(time.Millisecond))
}

func startPublisher(t *testing.T, p *amqp.Publisher) {
	t.Helper()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("publisher Stop: %v", err)
		}
	})
}

// newListWorker starts a Worker whose connections begin at element i of
// its URL list.
func newListWorker(t *testing.T, cfg amqp.WorkerConfig, h event.Handler, i int) *amqp.Worker {
	t.Helper()
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	amqp.WorkerStartAt(w, i)
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// With StopOnRefusal, a login one node refuses moves on to the next (each
// URL has its own credentials); only a round of the nodes with no connection
// and a refusal in it stops.
func TestPublisher_StopOnRefusalWaitsForEveryNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wrong := brokertest.URLWith(t, "wrong-password", "")
	for name, tc := range map[string]struct {
		list string
		stop bool
	}{
		"one node refuses":   {wrong + "," + b.url, false},
		"every node refuses": {wrong + "," + wrong, true},
		// A node that is down says nothing about the credentials: a round
		// with a refusal and no connection stops too.
		"one refuses, one is down": {wrong + "," + "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(brokertest.FreePort(t)) + "/", true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: tc.list, Exchange: b.exchange, Logger: b.log,
				Backoff: slowBackoff, StopOnRefusal: true})
			if err != nil {
				t.Fatal(err)
			}
			amqp.StartAt(p, 0) // the refusing node first
			startPublisher(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err = p.Publish(ctx, ev("Refused", "", 1))
			switch {
			case tc.stop && !errors.Is(err, amqp.ErrAccessRefused):
				t.Fatalf("publish = %v; want ErrAccessRefused once both nodes refused", err)
			case tc.stop:
				<-p.Done()
				if !errors.Is(p.Err(), amqp.ErrAccessRefused) {
					t.Fatalf("Err = %v; want ErrAccessRefused", p.Err())
				}
			case err != nil:
				t.Fatalf("publish = %v; want it confirmed by the second node", err)
			}
		})
	}
}
