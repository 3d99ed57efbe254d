package amqp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

// quiet keeps test output readable; set EF_TEST_LOG=1 to see worker logs.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlogWriter struct{ t testing.TB }

func (w *tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// bundle is what most tests need: a unique exchange and names to clean up.
type bundle struct {
	url      string
	exchange string
	log      *slog.Logger
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{url: brokertest.URL(t), exchange: brokertest.Name(t), log: testLogger(t)}
	brokertest.Cleanup(t, []string{amqp.UnroutedQueue(b.exchange)}, []string{b.exchange})
	return b
}

// cleanupApp deletes every queue, and the exchange, a worker of app declares.
func (b *bundle) cleanupApp(t *testing.T, app string, p retry.Policy) {
	q := amqp.AppQueue(app)
	queues := []string{q, amqp.DeadQueue(q)}
	for _, d := range p.WithDefaults().Stages() {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	brokertest.Cleanup(t, queues, []string{amqp.HopsExchange(q)})
}

func (b *bundle) publisher(t *testing.T, cfg amqp.PublisherConfig) *amqp.Publisher {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = b.url
	}
	cfg.Exchange = b.exchange
	cfg.Logger = b.log
	cfg.Backoff = retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	p, err := amqp.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("publisher Stop: %v", err)
		}
	})
	return p
}

// worker starts a worker and waits until it consumes.
func (b *bundle) worker(t *testing.T, cfg amqp.WorkerConfig, h event.Handler) *amqp.Worker {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = b.url
	}
	cfg.Exchange = b.exchange
	cfg.Logger = b.log
	if cfg.App == "" {
		cfg.App = brokertest.Name(t)
	}
	cfg.Backoff = retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	b.cleanupApp(t, cfg.App, cfg.Retry)
	w := workertest.Start(t, cfg, h)
	workertest.WaitReady(t, w, 20*time.Second)
	return w
}

func ev(typ, agg string, n int) event.Event {
	return event.Event{Type: typ, AggregateID: agg, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// recorder is a handler that records what it saw and fails as told.
type recorder struct {
	mu    sync.Mutex
	seen  map[string][]event.Event // by event id
	order []string
	fail  func(event.Event) error
}

func newRecorder(fail func(event.Event) error) *recorder {
	return &recorder{seen: map[string][]event.Event{}, fail: fail}
}

func (r *recorder) Handle(_ context.Context, e event.Event) error {
	r.mu.Lock()
	r.seen[e.ID] = append(r.seen[e.ID], e)
	r.order = append(r.order, e.ID)
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail(e)
	}
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[id])
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) attempts(id string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, e := range r.seen[id] {
		out = append(out, e.Attempt)
	}
	return out
}

// rawPublish sends a message as a foreign (non-eventfleet) publisher would.
func rawPublish(t *testing.T, exchange, key string, msg amqp091.Publishing) {
	t.Helper()
	ch := brokertest.Channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, msg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ok, err := dc.WaitContext(ctx); !ok || err != nil {
		t.Fatalf("raw publish not confirmed: %v %v", ok, err)
	}
}

// bindTap declares a throwaway queue bound to the exchange with key, to see
// what the exchange routes.
func bindTap(t *testing.T, exchange, key string) string {
	t.Helper()
	ch := brokertest.Channel(t)
	q := brokertest.Name(t) + "-tap"
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	brokertest.Cleanup(t, []string{q}, nil)
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q, key, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	return q
}
