package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

// TestBehaviour is the promise every queue type must keep, run through a
// Publisher and a Worker against the real broker: the app queue's type
// changes how the broker stores and redelivers, not what a user sees.
func TestBehaviour(t *testing.T) {
	t.Parallel()
	for _, qt := range []string{amqp.QueueQuorum, amqp.QueueClassic} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			for _, c := range behaviours {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, setup(t), amqp.WorkerConfig{QueueType: qt, Retry: fast})
				})
			}
		})
	}
}

// behaviours are the suite's cases. Each gets its own exchange and app (setup
// and bundle.worker name and clean them) and a WorkerConfig carrying the queue
// type under test, to which it adds what it needs.
var behaviours = []struct {
	name string
	run  func(t *testing.T, b *bundle, cfg amqp.WorkerConfig)
}{
	{"HandledOnceAndAcked", behaviourHandledOnce},
	{"FailureRetriedThenHandled", behaviourRetried},
	{"PermanentAndExhaustedDeadLettered", behaviourDeadLettered},
	{"StopWaitsForRunningHandler", behaviourStopWaits},
	{"UndecodableDeadLettered", behaviourUndecodable},
}

func behaviourHandledOnce(t *testing.T, b *bundle, cfg amqp.WorkerConfig) {
	rec := newRecorder(nil)
	w := b.worker(t, cfg, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	evs := make([]event.Event, 50)
	for i := range evs {
		evs[i] = ev("CardAddedToLibraryEvent", fmt.Sprintf("lib-%d", i), i)
	}
	ids := publishAll(t, p, evs...)
	brokertest.Eventually(t, 20*time.Second, "every event handled", func() bool { return rec.distinct() == len(ids) })
	brokertest.Eventually(t, 5*time.Second, "every event acked", func() bool { return w.Stats().Handled == int64(len(ids)) })
	for _, id := range ids {
		if got := rec.attempts(id); fmt.Sprint(got) != "[1]" {
			t.Fatalf("event %s handled with attempts %v, want [1]", id, got)
		}
	}
	brokertest.Eventually(t, 5*time.Second, "app queue empty", func() bool { return brokertest.Depth(t, w.Queue()) == 0 })
}

func behaviourRetried(t *testing.T, b *bundle, cfg amqp.WorkerConfig) {
	rec := newRecorder(func(e event.Event) error {
		if e.Attempt < 3 {
			return fmt.Errorf("not yet (attempt %d)", e.Attempt)
		}
		return nil
	})
	w := b.worker(t, cfg, rec)
	p := b.publisher(t, amqp.PublisherConfig{})
	ids := publishAll(t, p, ev("PaymentReceivedEvent", "acct-1", 1))
	brokertest.Eventually(t, 20*time.Second, "handled on the third attempt", func() bool { return w.Stats().Handled == 1 })
	if got := rec.attempts(ids[0]); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("attempts = %v, want [1 2 3]", got)
	}
	if n := brokertest.Depth(t, amqp.DeadQueue(w.Queue())); n != 0 {
		t.Fatalf("dead-letter queue holds %d after the retry succeeded, want 0", n)
	}
}

func behaviourDeadLettered(t *testing.T, b *bundle, cfg amqp.WorkerConfig) {
	h := event.NewRegistry().
		OnFunc("Permanent", func(context.Context, event.Event) error {
			return retry.Permanent(errors.New("bad card"))
		}).
		OnFunc("Failing", func(_ context.Context, e event.Event) error {
			return fmt.Errorf("downstream said no (attempt %d)", e.Attempt)
		})
	w := b.worker(t, cfg, h)
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("Permanent", "", 1), ev("Failing", "", 2))
	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 20*time.Second, "two dead letters", func() bool { return brokertest.Depth(t, dead) == 2 })
	got := map[string]string{}
	for _, d := range brokertest.Drain(t, dead, 2, time.Second) {
		got[d.Type] = fmt.Sprintf("%v/%v", d.Headers[amqp.HeaderReason], d.Headers[amqp.HeaderLastError])
	}
	want := map[string]string{
		"Permanent": string(amqp.ReasonPermanent) + "/permanent: bad card",
		"Failing":   string(amqp.ReasonExhausted) + "/downstream said no (attempt 3)",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dead letters (reason/last error) by type = %v, want %v", got, want)
	}
}

func behaviourStopWaits(t *testing.T, b *bundle, cfg amqp.WorkerConfig) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	w := b.worker(t, cfg, event.HandlerFunc(func(context.Context, event.Event) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	}))
	p := b.publisher(t, amqp.PublisherConfig{})
	publishAll(t, p, ev("SlowEvent", "", 1))
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler not started after 20s")
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- w.Stop(ctx)
	}()
	// Stop must not return while the handler runs. Whether it would is a
	// negative check: give it a moment to return early.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while the handler was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Stop returned before the running handler finished")
	}
	if h := w.Stats().Handled; h != 1 {
		t.Fatalf("Stats().Handled = %d after Stop, want the running handler's event acked", h)
	}
}

func behaviourUndecodable(t *testing.T, b *bundle, cfg amqp.WorkerConfig) {
	rec := newRecorder(nil)
	w := b.worker(t, cfg, rec)
	// A foreign publisher's body that is not JSON.
	rawPublish(t, b.exchange, "CardAddedToLibraryEvent", amqp091.Publishing{Body: []byte("<xml/>")})
	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 20*time.Second, "dead letter", func() bool { return brokertest.Depth(t, dead) == 1 })
	d := brokertest.Drain(t, dead, 1, time.Second)[0]
	if r := fmt.Sprint(d.Headers[amqp.HeaderReason]); r != string(amqp.ReasonUndecodable) {
		t.Errorf("reason %q, want %q", r, amqp.ReasonUndecodable)
	}
	if msg := fmt.Sprint(d.Headers[amqp.HeaderLastError]); !strings.Contains(msg, "not valid JSON") {
		t.Errorf("last error %q does not say why", msg)
	}
	if string(d.Body) != "<xml/>" {
		t.Errorf("dead letter body %q, want the original", d.Body)
	}
	if n := rec.distinct(); n != 0 {
		t.Errorf("the handler saw %d undecodable events, want 0", n)
	}
}
