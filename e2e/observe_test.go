package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// collector is a fake OTLP/HTTP trace collector.
type collector struct {
	mu    sync.Mutex
	spans []exported
}

type exported struct {
	service, name, traceID, parentID string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &coltrace.ExportTraceServiceRequest{}
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, exported{service: service, name: s.GetName(),
					traceID: hexs(s.GetTraceId()), parentID: hexs(s.GetParentSpanId())})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (c *collector) find(service, name, traceID string) *exported {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.spans {
		if s.service == service && s.name == name && s.traceID == traceID {
			return &c.spans[i]
		}
	}
	return nil
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// logAddr waits for p's JSON log line with msg and returns its addr field.
func logAddr(t *testing.T, p *proc, msg string) string {
	t.Helper()
	var addr string
	brokertest.Eventually(t, 30*time.Second, p.String()+" log "+msg, func() bool {
		_, stderr := p.output()
		sc := bufio.NewScanner(strings.NewReader(stderr))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg && l.Addr != "" {
				addr = l.Addr
				return true
			}
		}
		return false
	})
	return addr
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestFleet_TraceAndMetricsCrossTheFleet sends an event with a traceparent to
// `publisher serve` and checks that the worker's webhook request continues
// that trace, that both binaries export their spans over OTLP into it, and
// that both count the event in /metrics.
func TestFleet_TraceAndMetricsCrossTheFleet(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	exchange := brokertest.Name(t)
	app := brokertest.Name(t) + "-traced"
	q := amqp.AppQueue(app)
	queues := []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(exchange)}
	for _, d := range []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute} {
		queues = append(queues, amqp.RetryQueue(q, d))
	}
	brokertest.Cleanup(t, queues, []string{exchange, amqp.HopsExchange(q)})

	col := &collector{}
	colSrv := httptest.NewServer(col)
	defer colSrv.Close()
	var mu sync.Mutex
	var traceparents []string
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hookSrv.Close()

	otel := map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": colSrv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}
	with := func(env map[string]string) map[string]string {
		for k, v := range otel {
			env[k] = v
		}
		return env
	}
	worker := start(t, "worker", with(map[string]string{
		"AMQP_URL": url, "EXCHANGE": exchange, "APP_NAME": app,
		"HANDLER": "webhook", "WEBHOOK_URL": hookSrv.URL,
	}))
	pub := start(t, "publisher", with(map[string]string{
		"AMQP_URL": url, "EXCHANGE": exchange, "APP_NAME": "traced-publisher",
		"PUBLISHER_ADDR": "127.0.0.1:0", "PUBLISHER_AUTH": "none",
	}), "serve")
	workerAdmin := logAddr(t, worker, "serving /metrics, /healthz and /readyz")
	pubAddr := logAddr(t, pub, "listening")
	pubAdmin := logAddr(t, pub, "serving /metrics, /healthz and /readyz")
	brokertest.Eventually(t, 30*time.Second, "worker ready", func() bool {
		resp, err := http.Get("http://" + workerAdmin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := http.NewRequest("POST", "http://"+pubAddr+"/events",
		strings.NewReader(`{"type":"TracedEvent","id":"traced-1","data":{"n":1}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /events = %d", resp.StatusCode)
	}

	brokertest.Eventually(t, 20*time.Second, "webhook called", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(traceparents) == 1
	})
	mu.Lock()
	if tp := traceparents[0]; !strings.HasPrefix(tp, "00-"+traceID+"-") {
		t.Errorf("webhook traceparent %q, want trace %s", tp, traceID)
	}
	mu.Unlock()

	var publish, process *exported
	brokertest.Eventually(t, 20*time.Second, "spans exported", func() bool {
		publish = col.find("eventfleet-publisher", "publish "+exchange, traceID)
		process = col.find("eventfleet-worker", "process "+q, traceID)
		return publish != nil && process != nil
	})
	if publish.parentID != parentID {
		t.Errorf("publish span's parent %s, want the caller's %s", publish.parentID, parentID)
	}

	if m := scrape(t, workerAdmin); !strings.Contains(m, `eventfleet_consumed_total{app="`+app+`",outcome="ack",type="TracedEvent"} 1`) {
		t.Errorf("worker /metrics lacks the ack:\n%s", grep(m, "eventfleet_consumed"))
	}
	if m := scrape(t, pubAdmin); !strings.Contains(m, `eventfleet_published_total{outcome="confirmed",type="TracedEvent"} 1`) {
		t.Errorf("publisher /metrics lacks the publish:\n%s", grep(m, "eventfleet_published"))
	}
	for _, p := range []*proc{pub, worker} {
		if code := p.stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d", p.String(), code)
		}
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
