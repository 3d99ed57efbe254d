package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

var chaosLong = flag.Bool("chaos.long", false, "run the long versions of the chaos scenarios (minutes)")

// scale picks the short (CI) or long (-chaos.long) size of a scenario.
func scale(short, long int) int {
	if *chaosLong {
		return long
	}
	return short
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// rig is one scenario's world: an exchange, an app, and the loss checker.
type rig struct {
	t        *testing.T
	exchange string
	app      string
	check    *Checker
	policy   retry.Policy

	mu    sync.Mutex
	known map[string]bool // every id a publish was attempted for
}

// newRig prepares names on the broker at url; on the shared broker they are
// unique and deleted at the end.
func newRig(t *testing.T, url string) *rig {
	r := &rig{
		t:        t,
		exchange: brokertest.Name(t),
		app:      brokertest.Name(t),
		check:    NewChecker(),
		policy:   retry.Policy{Delays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, MaxAttempts: 3},
		known:    map[string]bool{},
	}
	q := amqp.AppQueue(r.app)
	queues := []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(r.exchange)}
	for _, d := range r.policy.Stages() {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	brokertest.CleanupAt(t, url, queues, []string{r.exchange, amqp.HopsExchange(q)})
	return r
}

var fastBackoff = retry.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}

func (r *rig) publisher(url string) *amqp.Publisher {
	r.t.Helper()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: url, Exchange: r.exchange, Window: 64,
		Backoff: fastBackoff, Heartbeat: time.Second, Logger: logger(r.t).With("side", "publisher")})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

// worker starts a worker whose successful handling is recorded; fail decides
// per event whether the handler fails (nil: never).
func (r *rig) worker(url string, fail func(event.Event) error) *amqp.Worker {
	r.t.Helper()
	h := event.HandlerFunc(func(ctx context.Context, e event.Event) error {
		if fail != nil {
			if err := fail(e); err != nil {
				return err
			}
		}
		r.check.Handled(e.ID)
		return nil
	})
	return workertest.Start(r.t, amqp.WorkerConfig{URL: url, Exchange: r.exchange, App: r.app, Retry: r.policy,
		Concurrency: 8, Prefetch: 32, Backoff: fastBackoff, Heartbeat: time.Second,
		Logger: logger(r.t).With("side", "worker")}, h)
}

// waitReady waits until w consumes: up to 60 s, since scenarios call it
// across a broker restart or a partition's heal.
func waitReady(t *testing.T, w *amqp.Worker) { t.Helper(); workertest.WaitReady(t, w, 60*time.Second) }

// publishLoop publishes up to n events from `callers` goroutines, each with its
// own deadline, pausing pace between publishes, until n are sent or stop is
// closed (nil: never). It records every outcome and returns when all callers
// have returned.
func (r *rig) publishLoop(p *amqp.Publisher, prefix string, n, callers int, timeout, pace time.Duration, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += callers {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%06d", prefix, i)
				r.mu.Lock()
				r.known[id] = true
				r.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := p.Publish(ctx, event.Event{ID: id, Type: "ChaosEvent", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
				cancel()
				r.check.Published(id, err)
				if pace > 0 {
					time.Sleep(pace) // the load's rate: pacing
				}
			}
		}()
	}
	wg.Wait()
}

func (r *rig) isKnown(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.known[id]
}

// drainDead moves whatever is in the app's dead-letter queue into the checker.
func (r *rig) drainDead(url string) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for {
		d, ok, err := ch.Get(amqp.DeadQueue(amqp.AppQueue(r.app)), true)
		if err != nil || !ok {
			return
		}
		r.check.Dead(d.MessageId)
	}
}

// settle waits until every confirmed event was handled or dead-lettered, then
// fails the test unless nothing was lost and nothing unknown was handled.
func (r *rig) settle(url string, timeout time.Duration) Report {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !r.check.Settled() && time.Now().Before(deadline) {
		r.drainDead(url)
		time.Sleep(100 * time.Millisecond)
	}
	r.drainDead(url)
	rep := r.check.Report(r.isKnown)
	r.t.Logf("checker: %v", rep)
	if !rep.OK() {
		r.t.Fatalf("promise broken: %v", rep)
	}
	return rep
}

// toxi is an in-process toxiproxy in front of a broker address.
type toxi struct {
	p *toxiproxy.Proxy
}

func newToxi(t *testing.T, brokerURL string) *toxi {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5672")
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, brokertest.Name(t), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &toxi{p: p}
}

// url is brokerURL with the proxy as host.
func (x *toxi) url(brokerURL string) string {
	u, _ := url.Parse(brokerURL)
	u.Host = x.p.Listen
	return u.String()
}

// cutAll closes every connection through the proxy and takes new ones again.
func (x *toxi) cutAll(t *testing.T) {
	t.Helper()
	x.p.Stop()
	if err := x.p.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
}

// down stops the proxy: connections are cut and new ones refused until up.
func (x *toxi) down() { x.p.Stop() }

func (x *toxi) up(t *testing.T) {
	t.Helper()
	if err := x.p.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
}

// add installs a toxic, e.g. add(t, "reset", "reset_peer", "upstream", `{"timeout":0}`).
func (x *toxi) add(t *testing.T, name, typ, stream, attrs string) {
	t.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Fatalf("add toxic %s: %v", name, err)
	}
}

func (x *toxi) remove(t *testing.T, name string) {
	t.Helper()
	if err := x.p.Toxics.RemoveToxic(context.Background(), name); err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
		t.Fatalf("remove toxic %s: %v", name, err)
	}
}
