package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// adminAddr waits for the worker's log line naming its METRICS_ADDR.
func adminAddr(t *testing.T, p *proc) string {
	t.Helper()
	p.waitLog(`"msg":"serving /metrics, /healthz and /readyz"`, 30*time.Second)
	for _, l := range p.Stderr.Lines() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal([]byte(l), &line) == nil && strings.HasPrefix(line.Msg, "serving /metrics") {
			return line.Addr
		}
	}
	t.Fatal("no metrics address logged")
	return ""
}

// metricValue is the value of the series (name and labels, exactly as
// Prometheus text shows them) in a /metrics body.
func metricValue(body, series string) (float64, bool) {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWorker_ReadyzFollowsTheBrokerConnection cuts the worker's broker
// connection (through a proxy) and checks that /readyz fails while it is
// down and recovers after, that /healthz stays up throughout, and that
// /metrics counts the events handled and the reconnect.
func TestWorker_ReadyzFollowsTheBrokerConnection(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	proxy := brokertest.NewProxy(t)
	p := startWorker(t, a.env(t, "AMQP_URL="+proxy.URL(t), "METRICS_ADDR=127.0.0.1:0"))
	addr := adminAddr(t, p)
	base := "http://" + addr
	// health is the container health check: `worker health` in the same
	// environment asks /readyz, and checks that this app's worker answers.
	health := func() int {
		return startWorker(t, map[string]string{"METRICS_ADDR": addr, "APP_NAME": a.name}, "health").wait(30 * time.Second)
	}
	p.waitConsuming()
	ready := func() int { code, _ := httpGet(t, base+"/readyz"); return code }
	brokertest.Eventually(t, 10*time.Second, "/readyz 200", func() bool { return ready() == http.StatusOK })

	var msgs []message
	for i := range 5 {
		msgs = append(msgs, message{id: fmt.Sprintf("ready-%d", i), typ: cardAdded, body: `{}`})
	}
	publish(t, a.exchange, msgs...)
	brokertest.Eventually(t, 10*time.Second, "5 events handled", func() bool { return len(p.Stdout.Lines()) == 5 })

	proxy.SetRefuse(true)
	proxy.Cut()
	brokertest.Eventually(t, 10*time.Second, "/readyz 503 while cut", func() bool { return ready() == http.StatusServiceUnavailable })
	if code, body := httpGet(t, base+"/readyz"); !strings.Contains(body, "not consuming") {
		t.Errorf("/readyz while cut = %d %s, want a reason", code, body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while cut = %d, want 200: liveness must not depend on the broker", code)
	}
	if code := health(); code != exitFatal {
		t.Errorf("worker health while cut: exit %d, want %d", code, exitFatal)
	}
	proxy.SetRefuse(false)
	brokertest.Eventually(t, 30*time.Second, "/readyz 200 again", func() bool { return ready() == http.StatusOK })
	if code := health(); code != exitOK {
		t.Errorf("worker health when consuming: exit %d, want 0", code)
	}

	// Acks held back for batching when the connection was cut are lost
	// with it, and the broker redelivers those events: at least once, so
	// the worker may legitimately handle an event twice. Wait until the
	// redeliveries are handled (the queue is empty, nothing in flight, and
	// the metric counts every handling the log shows) rather than assume
	// that every ack reached the broker before the cut.
	acked := `eventfleet_consumed_total{app="` + a.name + `",outcome="ack",type="` + cardAdded + `"}`
	inFlight := `eventfleet_deliveries_in_flight{app="` + a.name + `"}`
	var m string
	brokertest.Eventually(t, 30*time.Second, "every handling acked and counted", func() bool {
		if brokertest.Depth(t, a.queue) != 0 {
			return false
		}
		_, m = httpGet(t, base+"/metrics")
		n, _ := metricValue(m, acked)
		f, _ := metricValue(m, inFlight)
		return f == 0 && n == float64(len(p.Stdout.Lines()))
	})
	// Nothing lost, nothing made up: exactly the 5 events were handled.
	handled := map[string]int{}
	for _, l := range p.Stdout.Lines() {
		var ev struct{ ID string }
		_ = json.Unmarshal([]byte(l), &ev)
		handled[ev.ID]++
	}
	if len(handled) != len(msgs) {
		t.Errorf("handled %v, want each of the %d events", handled, len(msgs))
	}
	for _, msg := range msgs {
		if handled[msg.id] == 0 {
			t.Errorf("event %s never handled", msg.id)
		}
	}
	if n := len(p.Stdout.Lines()); n > len(msgs) {
		t.Logf("%d handlings of %d events: acks cut off with the connection were redelivered", n, len(msgs))
	}
	for _, want := range []string{
		`eventfleet_connection_up{role="consumer"} 1`,
		`eventfleet_reconnects_total{role="consumer"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	p.stop(30 * time.Second)
}

// TestWorker_MetricsAddrInUse: a taken METRICS_ADDR stops the worker at
// start with an error that names the variable.
func TestWorker_MetricsAddrInUse(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	first := startWorker(t, a.env(t, "METRICS_ADDR=127.0.0.1:0"))
	addr := adminAddr(t, first)
	second := startWorker(t, a.env(t, "METRICS_ADDR="+addr))
	if code := second.wait(30 * time.Second); code != exitFatal {
		t.Fatalf("exit %d, want %d", code, exitFatal)
	}
	if !strings.Contains(second.Stderr.String(), "METRICS_ADDR="+addr) {
		t.Errorf("stderr does not name METRICS_ADDR:\n%s", second.Stderr.String())
	}
	first.stop(30 * time.Second)
}

func TestHealth_BadSettings(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{
		"off":         "METRICS_ADDR=off",
		"nonsense":    "METRICS_ADDR",
		"127.0.0.1:1": "not ready",
	} {
		p := startWorker(t, map[string]string{"METRICS_ADDR": env}, "health")
		code := p.wait(10 * time.Second)
		if code == exitOK || !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("METRICS_ADDR=%s: exit %d, stderr %q; want a failure naming %q", env, code, p.Stderr.String(), want)
		}
	}
}
