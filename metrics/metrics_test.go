package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventfleet/eventfleet/metrics"
)

func TestNil_RecordsNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.Published("T", metrics.Confirmed, time.Millisecond)
	w := m.Worker("app")
	w.Handled("T", time.Millisecond)
	w.Settled("T", metrics.Ack)
	w.InFlight(1)
	w.QueueDepth("q", metrics.KindApp, 3)
	c := m.Conn(metrics.RolePublisher)
	c.Up(true)
	c.Blocked(true)
	if w != nil || c != nil {
		t.Fatal("nil Metrics handed out non-nil parts")
	}
}

func TestPublished_CountsByTypeAndOutcome(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	for range 3 {
		m.Published("A", metrics.Confirmed, 2*time.Millisecond)
	}
	m.Published("A", metrics.Nacked, time.Millisecond)
	m.Published("B", metrics.Returned, time.Millisecond)
	m.Published("B", metrics.Error, 0)
	m.Published("", metrics.Error, 0)
	m.Published("\xff", metrics.Error, 0)
	want := `
# HELP eventfleet_published_total Events published, by event type and outcome (confirmed, returned = kept in the unrouted queue, nacked, error).
# TYPE eventfleet_published_total counter
eventfleet_published_total{outcome="confirmed",type="A"} 3
eventfleet_published_total{outcome="confirmed",type="B"} 0
eventfleet_published_total{outcome="confirmed",type="invalid"} 0
eventfleet_published_total{outcome="confirmed",type="unknown"} 0
eventfleet_published_total{outcome="error",type="A"} 0
eventfleet_published_total{outcome="error",type="B"} 1
eventfleet_published_total{outcome="error",type="invalid"} 1
eventfleet_published_total{outcome="error",type="unknown"} 1
eventfleet_published_total{outcome="nacked",type="A"} 1
eventfleet_published_total{outcome="nacked",type="B"} 0
eventfleet_published_total{outcome="nacked",type="invalid"} 0
eventfleet_published_total{outcome="nacked",type="unknown"} 0
eventfleet_published_total{outcome="returned",type="A"} 0
eventfleet_published_total{outcome="returned",type="B"} 1
eventfleet_published_total{outcome="returned",type="invalid"} 0
eventfleet_published_total{outcome="returned",type="unknown"} 0
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "eventfleet_published_total"); err != nil {
		t.Fatal(err)
	}
	// Errors have no broker answer to time: 5 answered publishes observed.
	if n := histogramCount(t, m, "eventfleet_publish_confirm_seconds"); n != 5 {
		t.Fatalf("confirm histogram count = %d, want 5", n)
	}
}

func histogramCount(t *testing.T, c prometheus.Collector, name string) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			var n uint64
			for _, s := range f.GetMetric() {
				n += s.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

func TestTypeLabel_Bounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	for i := range metrics.MaxTypes + 50 {
		m.Published(fmt.Sprintf("Type%d", i), metrics.Confirmed, time.Millisecond)
	}
	// 4 outcomes per type label: MaxTypes types and "other".
	if n := testutil.CollectAndCount(m, "eventfleet_published_total"); n != 4*(metrics.MaxTypes+1) {
		t.Fatalf("%d series, want %d", n, 4*(metrics.MaxTypes+1))
	}
	want := `eventfleet_published_total{outcome="confirmed",type="other"} 50`
	if !strings.Contains(scrape(t, m), want) {
		t.Fatalf("scrape lacks %s", want)
	}
}

func TestWorker_Settled(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	w := m.Worker("billing")
	w.InFlight(1)
	w.InFlight(1)
	w.Handled("A", 3*time.Millisecond)
	w.Settled("A", metrics.Ack)
	w.Settled("A", metrics.Retry)
	w.Settled("A", metrics.DeadLetter)
	w.Settled("A", metrics.Requeue)
	w.InFlight(-1)
	w.QueueDepth("events_billing.dead", metrics.KindDeadLetter, 7)
	out := scrape(t, m)
	for _, line := range []string{
		`eventfleet_consumed_total{app="billing",outcome="ack",type="A"} 1`,
		`eventfleet_consumed_total{app="billing",outcome="retry",type="A"} 1`,
		`eventfleet_consumed_total{app="billing",outcome="dead_letter",type="A"} 1`,
		`eventfleet_consumed_total{app="billing",outcome="requeue",type="A"} 1`,
		`eventfleet_handler_duration_seconds_count{app="billing",type="A"} 1`,
		`eventfleet_deliveries_in_flight{app="billing"} 1`,
		`eventfleet_queue_messages{kind="dead_letter",queue="events_billing.dead"} 7`,
		`go_goroutines `,
		`eventfleet_build_info{go_version="go`,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("scrape lacks %s", line)
		}
	}
}

func TestConn_ReconnectsAndBlockedTime(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	c := m.Conn(metrics.RolePublisher)
	c.Up(true) // first connect: not a reconnect
	c.Blocked(true)
	c.Blocked(true) // repeated alarms do not restart the clock
	// The sleeps are blocked time to measure, not waits for a state.
	time.Sleep(20 * time.Millisecond)
	c.Blocked(false)
	c.Up(false)
	c.Up(true)
	c.Blocked(true)
	time.Sleep(10 * time.Millisecond)
	c.Up(false) // a lost connection ends the block
	out := scrape(t, m)
	for _, line := range []string{
		`eventfleet_reconnects_total{role="publisher"} 1`,
		`eventfleet_connection_up{role="publisher"} 0`,
		`eventfleet_blocked{role="publisher"} 0`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("scrape lacks %s", line)
		}
	}
	var secs float64
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, `eventfleet_blocked_seconds_total{role="publisher"} `) {
			_, _ = fmt.Sscanf(strings.Fields(l)[1], "%g", &secs)
		}
	}
	if secs < 0.03 || secs > 5 {
		t.Errorf("blocked seconds = %v, want about 0.03", secs)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRelay_BacklogOnlyWhileLeading(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	r := m.Relay("app.outbox")
	r.Leader(false)
	const pending = `eventfleet_outbox_pending_rows{table="app.outbox"}`
	if out := scrape(t, m); strings.Contains(out, pending) {
		t.Fatalf("a relay that never led reports a backlog:\n%s", out)
	}
	r.Leader(true)
	r.Backlog(7, 1.5, 1)
	if out := scrape(t, m); !strings.Contains(out, pending+" 7") || !strings.Contains(out, `eventfleet_outbox_oldest_pending_seconds{table="app.outbox"} 1.5`) {
		t.Fatalf("the leader's sample is missing:\n%s", out)
	}
	r.Leader(false)
	out := scrape(t, m)
	for _, gauge := range []string{pending, "eventfleet_outbox_oldest_pending_seconds{", "eventfleet_outbox_set_aside_rows{"} {
		if strings.Contains(out, gauge) {
			t.Errorf("a relay that stopped leading still reports %s", gauge)
		}
	}
	if !strings.Contains(out, `eventfleet_outbox_leader{table="app.outbox"} 0`) {
		t.Errorf("leader gauge missing:\n%s", out)
	}
}
