package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/retry"
)

func TestPublisher_ConfirmedMessageCarriesTheWireContract(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	p := b.publisher(t, amqp.PublisherConfig{AppID: "library"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := ev("CardAddedToLibraryEvent", "lib-7", 1)
	e.ID = "card-1"
	if err := p.Publish(ctx, e); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	ds := brokertest.Drain(t, tap, 1, 2*time.Second)
	if len(ds) != 1 {
		t.Fatalf("got %d messages, want 1", len(ds))
	}
	d := ds[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"routing key", d.RoutingKey, "CardAddedToLibraryEvent"},
		{"type", d.Type, "CardAddedToLibraryEvent"},
		{"message_id", d.MessageId, "card-1"},
		{"content_type", d.ContentType, "application/json"},
		{"delivery_mode", d.DeliveryMode, uint8(2)},
		{"app_id", d.AppId, "library"},
		{"aggregate_id", d.Headers["aggregate_id"], "lib-7"},
		{"body", string(d.Body), `{"n":1}`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if time.Since(d.Timestamp) > time.Minute {
		t.Errorf("timestamp %v not set to now", d.Timestamp)
	}
}

func TestPublisher_GeneratesUUIDv7WhenNoID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	p := b.publisher(t, amqp.PublisherConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("X", "", 1)); err != nil {
		t.Fatal(err)
	}
	d := brokertest.Drain(t, tap, 1, 2*time.Second)
	if len(d) != 1 || len(d[0].MessageId) != 36 || d[0].MessageId[14] != '7' {
		t.Fatalf("want one message with a UUIDv7 id, got %d messages %v", len(d), d)
	}
}

func TestPublisher_UnroutedEventsAreKeptNotDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "Routed")
	p := b.publisher(t, amqp.PublisherConfig{Window: 32})

	// Interleave routed and unroutable events, concurrently, with repeated
	// ids: returns must be matched to the right messages.
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			typ := "Routed"
			if i%3 == 0 {
				typ = "NobodyListens"
			}
			e := ev(typ, "", i)
			e.ID = fmt.Sprintf("id-%d", i%7)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs <- p.Publish(ctx, e)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	wantUnrouted := n / 3
	if got := p.Unrouted(); got != int64(wantUnrouted) {
		t.Errorf("Unrouted() = %d, want %d", got, wantUnrouted)
	}
	routed := brokertest.Drain(t, tap, n-wantUnrouted, 3*time.Second)
	kept := brokertest.Drain(t, amqp.UnroutedQueue(b.exchange), wantUnrouted, 3*time.Second)
	if len(routed) != n-wantUnrouted || len(kept) != wantUnrouted {
		t.Fatalf("routed %d (want %d), unrouted %d (want %d)", len(routed), n-wantUnrouted, len(kept), wantUnrouted)
	}
	for _, d := range kept {
		if d.Type != "NobodyListens" || d.Headers[amqp.HeaderRoutingKey] != "NobodyListens" ||
			d.Headers[amqp.HeaderExchange] != b.exchange {
			t.Fatalf("unrouted copy lost its origin: type %q headers %v", d.Type, d.Headers)
		}
	}
	for _, d := range routed {
		if d.Type != "Routed" {
			t.Fatalf("routed queue got %q", d.Type)
		}
	}
}

func TestPublisher_BatchPipelinesAndReportsPerEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	p := b.publisher(t, amqp.PublisherConfig{Window: 64})
	evs := make([]event.Event, 1000)
	for i := range evs {
		evs[i] = ev("Batch", "", i)
	}
	evs[500].Type = "bad*type"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.PublishBatch(ctx, evs)
	var be *amqp.BatchError
	if !errors.As(err, &be) || be.Failed != 1 || be.Errs[500] == nil || !errors.Is(err, event.ErrInvalidType) {
		t.Fatalf("PublishBatch error = %v, want one failure at index 500", err)
	}
	if evs[0].ID == "" {
		t.Error("batch did not fill in ids")
	}
	if got := len(brokertest.Drain(t, tap, 999, 3*time.Second)); got != 999 {
		t.Fatalf("%d events arrived, want 999", got)
	}
}

func TestPublisher_InvalidEventIsRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.publisher(t, amqp.PublisherConfig{})
	ctx := context.Background()
	for _, e := range []event.Event{
		{Type: ""},
		{Type: "*Event"},
		{Type: "X", Data: []byte("{not json")},
	} {
		if err := p.Publish(ctx, e); err == nil {
			t.Errorf("Publish(%+v) succeeded, want a validation error", e)
		}
	}
}

func TestPublisher_BrokerUnreachableFailsByDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.publisher(t, amqp.PublisherConfig{URL: "amqp://guest:s3cret@127.0.0.1:1/"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, ev("X", "", 1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want DeadlineExceeded", err)
	}
	if p.Connected() {
		t.Fatal("Connected() = true with no broker")
	}
}

func TestPublisher_BrokerAppearsLater(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	proxy := brokertest.NewProxy(t)
	proxy.SetRefuse(true)
	p := b.publisher(t, amqp.PublisherConfig{URL: proxy.URL(t)})
	go func() {
		time.Sleep(500 * time.Millisecond) // how long the broker is absent: the fault itself
		proxy.SetRefuse(false)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("Late", "", 1)); err != nil {
		t.Fatalf("Publish after broker came up: %v", err)
	}
	if len(brokertest.Drain(t, tap, 1, 2*time.Second)) != 1 {
		t.Fatal("event did not arrive")
	}
}

func TestPublisher_ConnectionCutRepublishesUnconfirmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	proxy := brokertest.NewProxy(t)
	p := b.publisher(t, amqp.PublisherConfig{URL: proxy.URL(t), Window: 64})

	const n = 3000
	var wg sync.WaitGroup
	var mu sync.Mutex
	confirmed := map[string]bool{}
	var failed int
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				e := ev("Cut", "", i)
				e.ID = fmt.Sprintf("cut-%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := p.Publish(ctx, e)
				cancel()
				mu.Lock()
				if err == nil {
					confirmed[e.ID] = true
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	// Cut the connection a few times while publishing.
	for range 3 {
		time.Sleep(150 * time.Millisecond) // paces the cuts: the fault itself
		proxy.Cut()
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d publishes failed although the broker came back within their deadline", failed)
	}
	got := map[string]int{}
	for _, d := range brokertest.Drain(t, tap, -1, 2*time.Second) {
		got[d.MessageId]++
	}
	lost := 0
	for id := range confirmed {
		if got[id] == 0 {
			lost++
		}
	}
	dups := 0
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("confirmed %d, arrived %d distinct, duplicates %d", len(confirmed), len(got), dups)
	if lost > 0 {
		t.Fatalf("%d confirmed events lost", lost)
	}
}

func TestPublisher_StopIsSafeTwiceAndBeforeStart(t *testing.T) {
	t.Parallel()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := p.Publish(ctx, ev("X", "", 1)); !errors.Is(err, amqp.ErrClosed) {
		t.Fatalf("Publish after Stop = %v, want ErrClosed", err)
	}
	if err := p.Start(ctx); !errors.Is(err, amqp.ErrClosed) {
		t.Fatalf("Start after Stop = %v, want ErrClosed", err)
	}
}

func TestNewPublisher_RejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []amqp.PublisherConfig{
		{URL: "http://example.com"},
		{Window: -1},
		{Window: 70000},
	} {
		_, err := amqp.NewPublisher(cfg)
		if !errors.Is(err, amqp.ErrInvalidConfig) {
			t.Errorf("NewPublisher(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	_, err := amqp.NewPublisher(amqp.PublisherConfig{URL: "ftp://user:hunter2@host/"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password or is nil: %v", err)
	}
}

// A fatal error must reach every Publish that was waiting for a connection
// when it came, not only Err: the caller needs to know that publishing again
// cannot help (the old loop returned it from the wait for a session).
func TestPublisher_TopologyMismatchReachesWaitingPublishes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ch := brokertest.Channel(t)
	// The domain exchange exists as a fanout; the Publisher declares a topic one.
	if err := ch.ExchangeDeclare(b.exchange, amqp091.ExchangeFanout,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil); err != nil {
		t.Fatal(err)
	}
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: b.url, Exchange: b.exchange, Logger: b.log,
		Backoff: retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Publish(ctx, ev("Mismatch", "", i))
		}()
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	<-p.Done()
	if !errors.Is(p.Err(), amqp.ErrTopologyMismatch) {
		t.Fatalf("Err() = %v, want ErrTopologyMismatch", p.Err())
	}
	wrong := 0
	for _, err := range errs {
		if !errors.Is(err, amqp.ErrTopologyMismatch) {
			if wrong == 0 {
				t.Errorf("a waiting Publish returned %v, want ErrTopologyMismatch", err)
			}
			wrong++
		}
	}
	if wrong > 0 {
		t.Fatalf("%d of %d waiting publishes did not get the fatal error", wrong, n)
	}
	// And one made after the Publisher ended.
	if err := p.Publish(ctx, ev("Mismatch", "", n)); !errors.Is(err, amqp.ErrTopologyMismatch) {
		t.Fatalf("Publish after the fatal error = %v, want ErrTopologyMismatch", err)
	}
}
