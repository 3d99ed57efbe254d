package amqp_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// deepTable is a header value nested levels tables deep.
func deepTable(levels int) amqp091.Table {
	t := amqp091.Table{"bottom": "x"}
	for range levels - 1 {
		t = amqp091.Table{"n": t}
	}
	return t
}

// plainClientFails shows the fixture is hostile: a bare amqp091-go consumer
// loses its whole connection on the queue's first message. The message goes
// back to the queue.
func plainClientFails(t *testing.T, queue string) {
	t.Helper()
	conn, err := amqp091.Dial(brokertest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Before anything else: a connection that closed already would close
	// a channel registered late without saying why.
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d, ok := <-ds:
		if ok {
			t.Fatalf("the plain client read the message (headers %v): the fixture is not hostile", d.Headers)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the plain client neither read nor failed in 20s")
	}
	if e := <-closed; e == nil || e.Code != amqp091.FrameError {
		t.Fatalf("plain client's connection closed with %v, want a frame error", e)
	}
}

// TestWorker_UnreadableHeaderDoesNotStallTheQueue: a header nested deeper
// than amqp091-go reads used to kill the worker's connection on every
// delivery of the message (21 reconnects in 3.5 minutes before the quorum
// delivery limit moved it; on a classic queue for ever), and the events
// behind it waited. Now the header is left out and named, the event is
// handled, and so is everything behind it, on one connection.
func TestWorker_UnreadableHeaderDoesNotStallTheQueue(t *testing.T) {
	for _, qt := range []string{amqp.QueueQuorum, amqp.QueueClassic} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var mu sync.Mutex
			got := map[string]event.Event{}
			h := event.HandlerFunc(func(_ context.Context, e event.Event) error {
				mu.Lock()
				got[e.ID] = e
				mu.Unlock()
				return nil
			})
			app := brokertest.Name(t)
			w := b.worker(t, amqp.WorkerConfig{App: app, QueueType: qt, EventTypes: []string{"Deep", "Good"}}, h)
			if err := w.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Queue first the hostile message, then ten good ones.
			rawPublish(t, b.exchange, "Deep", amqp091.Publishing{MessageId: "deep", ContentType: "application/json",
				Headers: amqp091.Table{"deep": deepTable(40), "aggregate_id": "a-1"}, Body: []byte(`{}`)})
			for i := range 10 {
				rawPublish(t, b.exchange, "Good", amqp091.Publishing{MessageId: "good-" + string(rune('a'+i)), Body: []byte(`{}`)})
			}
			plainClientFails(t, w.Queue())

			logs := &lockedBuffer{}
			b.log = slog.New(slog.NewTextHandler(logs, nil))
			began := time.Now()
			b.worker(t, amqp.WorkerConfig{App: app, QueueType: qt, EventTypes: []string{"Deep", "Good"}}, h)
			brokertest.Eventually(t, 20*time.Second, "all 11 events handled", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) == 11
			})
			t.Logf("%s: the hostile event and the 10 behind it handled %v after the worker started", qt, time.Since(began).Round(time.Millisecond))
			mu.Lock()
			deep := got["deep"]
			mu.Unlock()
			if _, ok := deep.Headers["deep"]; ok {
				t.Error("the unreadable header reached the handler")
			}
			if deep.Headers[amqp.HeaderUnreadable] != "deep" || deep.AggregateID != "a-1" {
				t.Errorf("headers %v, aggregate %q: want the unreadable one named and the rest kept", deep.Headers, deep.AggregateID)
			}
			if n := strings.Count(logs.String(), "reconnecting"); n != 0 {
				t.Errorf("the worker reconnected %d times:\n%s", n, logs)
			}
		})
	}
}

// TestWorker_OversizedBodyIsNotHeldOrSentAgain: a body over MaxBody used to
// be read whole (three 20 MiB bodies took a worker from 18 to 162 MB) and
// uploaded again to the dead-letter queue. Now the connection discards it as
// it arrives and the worker rejects the delivery, so the broker moves the
// message, whole, to the dead-letter queue.
func TestWorker_OversizedBodyIsNotHeldOrSentAgain(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	for _, qt := range []string{amqp.QueueQuorum, amqp.QueueClassic} {
		t.Run(qt, func(t *testing.T) {
			b := setup(t)
			const maxBody = 1 << 20
			const size = 12 << 20
			app := brokertest.Name(t)
			r := newRecorder(nil)
			w := b.worker(t, amqp.WorkerConfig{App: app, QueueType: qt, MaxBody: maxBody, EventTypes: []string{"Big", "Good"}}, r)
			if err := w.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("y"), size)
			big[0], big[len(big)-1] = '"', '"'
			for _, id := range []string{"big-1", "big-2", "big-3"} {
				rawPublish(t, b.exchange, "Big", amqp091.Publishing{MessageId: id, Body: big})
			}
			rawPublish(t, b.exchange, "Good", amqp091.Publishing{MessageId: "good", Body: []byte(`{}`)})

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			w = b.worker(t, amqp.WorkerConfig{App: app, QueueType: qt, MaxBody: maxBody, EventTypes: []string{"Big", "Good"}}, r)
			dead := amqp.DeadQueue(w.Queue())
			began := time.Now()
			brokertest.Eventually(t, 30*time.Second, "3 in the dead-letter queue and the good one handled", func() bool {
				return brokertest.Depth(t, dead) >= 3 && r.count("good") == 1
			})
			t.Logf("%s: three %d MiB bodies in the dead-letter queue %v after the worker consumed", qt, size>>20, time.Since(began).Round(time.Millisecond))
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > size {
				t.Errorf("the worker allocated %d MiB for three %d MiB bodies over its %d MiB limit",
					n>>20, size>>20, maxBody>>20)
			}
			if r.distinct() != 1 {
				t.Errorf("handler saw %d events, want only the good one", r.distinct())
			}
			for _, d := range brokertest.Drain(t, dead, 3, 5*time.Second) {
				m := deadletter.ReadMessage(&d, false)
				if m.Reason != amqp.ReasonOversized || d.Headers[amqp.HeaderReason] != nil || !bytes.Equal(d.Body, big) {
					t.Errorf("%s: reason %q, our headers %v, body %d bytes: want the broker's move of the whole message",
						d.MessageId, m.Reason, d.Headers[amqp.HeaderReason], len(d.Body))
				}
			}
		})
	}
}

// TestDial_UnreadableHeaderOnAnyConnection: every connection eventfleet
// dials is vetted (the Publisher's reads returned messages; worker dlq's reads
// dead letters), not only the Worker's.
func TestDial_UnreadableHeaderOnAnyConnection(t *testing.T) {
	t.Parallel()
	q := brokertest.Name(t)
	ch := brokertest.Channel(t)
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	brokertest.Cleanup(t, []string{q}, nil)
	rawPublish(t, "", q, amqp091.Publishing{Headers: amqp091.Table{"wide": make([]any, 9000)}, Body: []byte("x")})
	conn, err := amqp.Dial(context.Background(), brokertest.URL(t), "test-"+q)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := c.Get(q, true /* autoAck */)
	if err != nil || !ok {
		t.Fatalf("get: %v, %v", ok, err)
	}
	if d.Headers[amqp.HeaderUnreadable] != "wide" || string(d.Body) != "x" {
		t.Errorf("headers %v, body %q", d.Headers, d.Body)
	}
	if conn.IsClosed() {
		t.Error("the connection closed")
	}
}

// TestWorker_LargeHeadersNamedLikeOursStillMove: a 123 KB "eventfleet-pad"
// header on a non-JSON body could not be moved ("headers too large"), once a
// second until the delivery limit (classic: for ever), because only headers
// without the "eventfleet-" prefix were dropped to make room.
func TestWorker_LargeHeadersNamedLikeOursStillMove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := newRecorder(nil)
	w := b.worker(t, amqp.WorkerConfig{EventTypes: []string{"Padded"}}, r)
	rawPublish(t, b.exchange, "Padded", amqp091.Publishing{MessageId: "padded", ContentType: "text/plain",
		Headers: amqp091.Table{"eventfleet-pad": strings.Repeat("p", 123_000)}, Body: []byte("not json")})
	dead := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 20*time.Second, "the padded message dead-lettered", func() bool {
		return brokertest.Depth(t, dead) == 1
	})
	d := brokertest.Drain(t, dead, 1, 5*time.Second)[0]
	if d.Headers[amqp.HeaderReason] != string(amqp.ReasonUndecodable) || d.Headers["eventfleet-pad"] != nil ||
		!strings.Contains(d.Headers[amqp.HeaderDropped].(string), "eventfleet-pad") || string(d.Body) != "not json" {
		t.Errorf("dead letter: reason %v, dropped %v, pad kept %v, body %q", d.Headers[amqp.HeaderReason],
			d.Headers[amqp.HeaderDropped], d.Headers["eventfleet-pad"] != nil, d.Body)
	}
}
