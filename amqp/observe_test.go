package amqp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
	"github.com/eventfleet/eventfleet/webhook"
)

// metricValue gathers m and returns the value of the series name{labels}
// (counter, gauge, or a histogram's sample count), or -1 if there is none.
func metricValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := gatherValue(m, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gatherValue is metricValue for goroutines other than the test's, which
// must not call t.Fatal.
func gatherValue(m *metrics.Metrics, name string, labels map[string]string) (float64, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		return 0, err
	}
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range s.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return value(s), nil
		}
	}
	return -1, nil
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return -1
}

// TestMetrics_CountWhatHappened runs a known workload and checks that every
// count matches it: events that succeed, succeed on a retry, fail for good,
// and find no queue.
func TestMetrics_CountWhatHappened(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := metrics.New()
	const good, flaky, poison = 20, 5, 3
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	h := newRecorder(func(e event.Event) error {
		switch e.Type {
		case "Poison":
			return retry.Permanent(errors.New("cannot handle this"))
		case "Flaky":
			mu.Lock()
			defer mu.Unlock()
			if !failedOnce[e.ID] {
				failedOnce[e.ID] = true
				return errors.New("try again")
			}
		}
		return nil
	})
	app := brokertest.Name(t)
	w := b.worker(t, amqp.WorkerConfig{
		App:            app,
		EventTypes:     []string{"Good", "Flaky", "Poison"},
		Retry:          retry.Policy{Delays: []time.Duration{100 * time.Millisecond}, MaxAttempts: 3},
		Metrics:        m,
		SampleInterval: 100 * time.Millisecond,
	}, h)
	p := b.publisher(t, amqp.PublisherConfig{Metrics: m})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for typ, n := range map[string]int{"Good": good, "Flaky": flaky, "Poison": poison, "Nobody": 2} {
		for i := range n {
			if err := p.Publish(ctx, ev(typ, "a", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Publish(ctx, event.Event{Type: "Bad#Type"}); err == nil {
		t.Fatal("an invalid type was published")
	}
	brokertest.Eventually(t, 20*time.Second, "all events settled", func() bool {
		st := w.Stats()
		return st.Handled == good+flaky && st.Retried == flaky && st.DeadLettered == poison
	})

	type series struct {
		name   string
		labels map[string]string
		want   float64
	}
	consumed := func(typ, outcome string) map[string]string {
		return map[string]string{"app": app, "type": typ, "outcome": outcome}
	}
	for _, s := range []series{
		{"eventfleet_published_total", map[string]string{"type": "Good", "outcome": "confirmed"}, good},
		{"eventfleet_published_total", map[string]string{"type": "Flaky", "outcome": "confirmed"}, flaky},
		{"eventfleet_published_total", map[string]string{"type": "Nobody", "outcome": "returned"}, 2},
		{"eventfleet_published_total", map[string]string{"type": "Bad#Type", "outcome": "error"}, 1},
		{"eventfleet_publish_confirm_seconds", nil, good + flaky + poison + 2},
		{"eventfleet_consumed_total", consumed("Good", "ack"), good},
		{"eventfleet_consumed_total", consumed("Flaky", "retry"), flaky},
		{"eventfleet_consumed_total", consumed("Flaky", "ack"), flaky},
		{"eventfleet_consumed_total", consumed("Poison", "dead_letter"), poison},
		{"eventfleet_consumed_total", consumed("Poison", "ack"), 0},
		{"eventfleet_handler_duration_seconds", map[string]string{"app": app, "type": "Flaky"}, 2 * flaky},
		{"eventfleet_handler_duration_seconds", map[string]string{"app": app, "type": "Good"}, good},
		{"eventfleet_deliveries_in_flight", map[string]string{"app": app}, 0},
		{"eventfleet_connection_up", map[string]string{"role": "publisher"}, 1},
		{"eventfleet_connection_up", map[string]string{"role": "consumer"}, 1},
		{"eventfleet_connection_up", map[string]string{"role": "hops"}, 1},
		{"eventfleet_reconnects_total", map[string]string{"role": "consumer"}, 0},
	} {
		if got := metricValue(t, m, s.name, s.labels); got != s.want {
			t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.want)
		}
	}
	// Hops are not published events.
	if got := metricValue(t, m, "eventfleet_published_total", map[string]string{"type": "Poison", "outcome": "confirmed"}); got != poison {
		t.Errorf("published Poison = %v, want %v (hops must not count)", got, poison)
	}
	// Depths are sampled: the dead letters show up within a few samples.
	dlq := amqp.DeadQueue(w.Queue())
	brokertest.Eventually(t, 5*time.Second, "sampled dead-letter depth", func() bool {
		return metricValue(t, m, "eventfleet_queue_messages", map[string]string{"queue": dlq, "kind": "dead_letter"}) == poison
	})
	retryQ := amqp.RetryQueue(w.Queue(), 100*time.Millisecond)
	brokertest.Eventually(t, 5*time.Second, "sampled retry depth back to 0", func() bool {
		return metricValue(t, m, "eventfleet_queue_messages", map[string]string{"queue": retryQ, "kind": "retry"}) == 0
	})
}

// TestWorker_ReadinessFollowsTheConnection cuts the worker's connection and
// checks that Consuming (what /readyz reports) and the connection metrics
// follow it down and back up.
func TestWorker_ReadinessFollowsTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	proxy := brokertest.NewProxy(t)
	m := metrics.New()
	w := b.worker(t, amqp.WorkerConfig{URL: proxy.URL(t), Metrics: m}, newRecorder(nil))
	if !w.Consuming() {
		t.Fatal("not consuming after Ready")
	}
	up := func() float64 {
		return metricValue(t, m, "eventfleet_connection_up", map[string]string{"role": "consumer"})
	}
	proxy.SetRefuse(true)
	proxy.Cut()
	brokertest.Eventually(t, 10*time.Second, "not consuming after the cut", func() bool { return !w.Consuming() })
	if got := up(); got != 0 {
		t.Errorf("connection_up{consumer} = %v while cut, want 0", got)
	}
	proxy.SetRefuse(false)
	brokertest.Eventually(t, 20*time.Second, "consuming again", w.Consuming)
	if got := up(); got != 1 {
		t.Errorf("connection_up{consumer} = %v after reconnecting, want 1", got)
	}
	if got := metricValue(t, m, "eventfleet_reconnects_total", map[string]string{"role": "consumer"}); got != 1 {
		t.Errorf("reconnects_total{consumer} = %v, want 1", got)
	}
}

// TestTracing_ContextCrossesTheBroker gives the publisher a trace context and
// checks that the webhook request carries the same trace, on the first
// attempt and on a retry, with no tracing set up (propagation alone), and
// that the worker's log line about the retry names the trace.
func TestTracing_ContextCrossesTheBroker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var logs lockedBuffer
	b.log = slog.New(slog.NewJSONHandler(&logs, nil))
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		first := len(got) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	hook, err := webhook.New(webhook.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	w := b.worker(t, amqp.WorkerConfig{Retry: retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3}}, hook)
	p := b.publisher(t, amqp.PublisherConfig{})

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx, cancel := context.WithTimeout(trace.ContextWithRemoteSpanContext(context.Background(), parent), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("Traced", "a", 1)); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, 10*time.Second, "handled on the second attempt", func() bool { return w.Stats().Handled == 1 })
	mu.Lock()
	defer mu.Unlock()
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for i, tp := range got {
		if tp != want {
			t.Errorf("attempt %d: traceparent %q, want %q", i+1, tp, want)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "retrying later") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for k, v := range map[string]any{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "attempt": 1.0, "type": "Traced", "app": w.Queue()[len("events_"):]} {
		if line[k] != v {
			t.Errorf("retry log line: %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if id, _ := line["event_id"].(string); id == "" {
		t.Errorf("retry log line has no event_id: %v", line)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTracing_Spans checks the spans an SDK records: publish as the caller's
// child, process as the publish's child, a settle span for the retry, and
// the messaging attributes.
func TestTracing_Spans(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var seen sync.Map
	h := newRecorder(func(e event.Event) error {
		if _, again := seen.LoadOrStore(e.ID, true); !again {
			return errors.New("once more")
		}
		return nil
	})
	w := b.worker(t, amqp.WorkerConfig{
		TracerProvider: tp,
		Retry:          retry.Policy{Delays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 3},
	}, h)
	p := b.publisher(t, amqp.PublisherConfig{TracerProvider: tp})

	ctx, root := tp.Tracer("test").Start(context.Background(), "request")
	e := ev("Spanned", "agg", 1)
	e.ID = "span-test-1"
	if err := p.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	root.End()
	brokertest.Eventually(t, 10*time.Second, "handled", func() bool { return w.Stats().Handled == 1 })
	// The process span ends after the ack is queued; give it a moment.
	var publish, settle sdktrace.ReadOnlySpan
	var process []sdktrace.ReadOnlySpan
	brokertest.Eventually(t, 5*time.Second, "spans ended", func() bool {
		publish, settle, process = nil, nil, nil
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "publish " + b.exchange:
				publish = s
			case "process " + w.Queue():
				process = append(process, s)
			case "settle " + amqp.RetryQueue(w.Queue(), 50*time.Millisecond):
				settle = s
			}
		}
		return publish != nil && settle != nil && len(process) == 2
	})
	if publish.Parent().SpanID() != root.SpanContext().SpanID() || publish.SpanKind() != trace.SpanKindProducer {
		t.Errorf("publish span: parent %v kind %v, want child of the caller's span, producer", publish.Parent().SpanID(), publish.SpanKind())
	}
	wantAttrs(t, publish, map[string]string{
		"messaging.system": "rabbitmq", "messaging.operation.name": "publish",
		"messaging.destination.name": b.exchange, "messaging.rabbitmq.destination.routing_key": "Spanned",
		"messaging.message.id": "span-test-1", "eventfleet.outcome": "confirmed",
	})
	for i, s := range process {
		if s.Parent().SpanID() != publish.SpanContext().SpanID() || s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("process span %d is not the publish span's child", i)
		}
		wantAttrs(t, s, map[string]string{"messaging.system": "rabbitmq", "messaging.operation.name": "process",
			"messaging.message.id": "span-test-1", "messaging.consumer.group.name": w.Queue()[len("events_"):]})
	}
	if settle.Parent().TraceID() != root.SpanContext().TraceID() {
		t.Error("settle span is not in the publish's trace")
	}
	wantAttrs(t, settle, map[string]string{"messaging.operation.name": "settle", "eventfleet.outcome": "retry"})
}

func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	have := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		have[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got, ok := have[attribute.Key(k)]; !ok || got.String() != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got.String(), v)
		}
	}
}
