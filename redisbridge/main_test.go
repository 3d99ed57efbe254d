package redisbridge_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
	"github.com/eventfleet/eventfleet/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fast is the tests' backoff: failures are retried at once, nearly.
var fast = retry.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// start starts a bridge, stopped at cleanup.
func start(t testing.TB, cfg redisbridge.Config, pub redisbridge.Publisher) *redisbridge.Bridge {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = redistest.URL(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Backoff == (retry.Backoff{}) {
		cfg.Backoff = fast
	}
	b, err := redisbridge.New(cfg, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return b
}

// broker is a real Publisher on a fresh exchange, and a queue bound to typ.
func broker(t testing.TB, typ string) (*amqp.Publisher, *amqp091.Channel, string) {
	t.Helper()
	exchange := brokertest.Name(t)
	queue := exchange + "-q"
	brokertest.Cleanup(t, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(t), Exchange: exchange, AppID: "redis-test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = p.Stop(sctx)
	})
	<-p.Ready() // the exchange is declared
	ch := brokertest.Channel(t)
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, typ, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	return p, ch, queue
}

// receive returns the next message of queue.
func receive(t testing.TB, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	var d amqp091.Delivery
	brokertest.Eventually(t, 30*time.Second, "a message in "+queue, func() bool {
		got, ok, err := ch.Get(queue, true /* autoAck */)
		if err != nil {
			t.Fatal(err)
		}
		d = got
		return ok
	})
	return d
}

// gatedPublisher holds every publish until open is closed, and records
// what it published.
type gatedPublisher struct {
	open chan struct{}
	mu   sync.Mutex
	got  []event.Event
	busy int // publishes waiting at the gate
	peak int
}

func newGated() *gatedPublisher { return &gatedPublisher{open: make(chan struct{})} }

func (p *gatedPublisher) Publish(ctx context.Context, ev event.Event) error {
	p.mu.Lock()
	p.busy++
	p.peak = max(p.peak, p.busy)
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.busy--; p.mu.Unlock() }()
	select {
	case <-p.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	p.got = append(p.got, ev)
	p.mu.Unlock()
	return nil
}

func (p *gatedPublisher) waiting() (busy, peak, got int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, p.peak, len(p.got)
}

func (p *gatedPublisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.got...)
}

func init() { redisbridge.SetLogger(quiet) }

// redisAddr is the tests' Redis as host:port.
func redisAddr(t testing.TB) string {
	t.Helper()
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return opt.Addr
}
