package natsbridge_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/natsbridge"
	"github.com/eventfleet/eventfleet/retry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// unique is a name for this test's subjects, streams and consumers: one
// token, no dots or wildcards.
func unique(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Trim(nonName.ReplaceAllString(t.Name(), "_"), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return "t_" + base + "_" + hex.EncodeToString(b)
}

// jsNames are a unique subject root, stream and consumer; the stream is
// deleted when t ends (the Bridge may be the one that creates it).
func jsNames(t testing.TB, nc *nats.Conn) (root, stream, consumer string, js jetstream.JetStream) {
	t.Helper()
	u := unique(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, "S_"+u)
	})
	return u, "S_" + u, "C_" + u, js
}

// createStream makes stream capture subjects, as an operator would.
func createStream(t testing.TB, js jetstream.JetStream, stream string, subjects ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: subjects, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("create stream %s: %v", stream, err)
	}
}

// fakePublisher records what it confirmed; refuse picks events it does not.
type fakePublisher struct {
	mu      sync.Mutex
	got     []event.Event
	calls   int
	refuse  func(ev event.Event) error
	delay   time.Duration // per batch: a broker slower than the source
	maxSize int           // largest batch seen
}

func (p *fakePublisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	p.mu.Lock()
	delay, refuse := p.delay, p.refuse
	p.calls++
	p.maxSize = max(p.maxSize, len(evs))
	p.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	be := &amqp.BatchError{Errs: make([]error, len(evs))}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ev := range evs {
		if refuse != nil {
			if err := refuse(ev); err != nil {
				be.Errs[i] = err
				be.Failed++
				continue
			}
		}
		p.got = append(p.got, ev)
	}
	if be.Failed > 0 {
		return be
	}
	return nil
}

func (p *fakePublisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *fakePublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func (p *fakePublisher) batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// startBridge starts a Bridge on cfg (quiet, on the test server unless cfg
// says otherwise), stopped at cleanup.
func startBridge(t testing.TB, cfg natsbridge.Config, pub natsbridge.Publisher) *natsbridge.Bridge {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = natstest.URL(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	b, err := natsbridge.New(cfg, pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b
}

// eventually polls cond every 10ms until it holds, failing t after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishJS publishes body on subject through JetStream, with a
// Nats-Msg-Id when id is set, and waits for the stream's ack.
func publishJS(t testing.TB, js jetstream.JetStream, subject, body, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	if _, err := js.Publish(ctx, subject, []byte(body), opts...); err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
}

// logBuffer is a slog.Logger writing to a buffer the test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fastBackoff keeps retry pauses short in tests.
var fastBackoff = retry.Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// metricValue is the value of the series name{source=source} in m.
func metricValue(t testing.TB, m *metrics.Metrics, name, source string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == source {
					if c := s.GetCounter(); c != nil {
						return c.GetValue()
					}
					return s.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{source=%q}", name, source)
	return 0
}

// streamCreated is stream's creation time as the server reports it.
func streamCreated(t testing.TB, js jetstream.JetStream, stream string) time.Time {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return st.CachedInfo().Created
}

// seqID is the id the bridge gives the message at seq of stream (SeqID,
// with the stream's creation time as the server reports it).
func seqID(t testing.TB, js jetstream.JetStream, stream string, seq uint64) string {
	t.Helper()
	return natsbridge.SeqID(stream, streamCreated(t, js, stream), seq)
}
