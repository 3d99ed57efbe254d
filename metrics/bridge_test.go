package metrics_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventfleet/eventfleet/metrics"
)

func TestBridge_CountsBySource(t *testing.T) {
	m := metrics.New()
	b := m.Bridge("redis-stream")
	b.Published(3)
	b.Rejected()
	b.Redelivered()
	b.Reconnected()
	b.InFlight(7)
	m.Bridge("nats").Dropped(5)
	want := `
# HELP eventfleet_bridge_published_total Source messages published (confirmed) and then settled at the source (XACK, JetStream ack; pub/sub and core NATS have nothing to settle).
# TYPE eventfleet_bridge_published_total counter
eventfleet_bridge_published_total{source="nats"} 0
eventfleet_bridge_published_total{source="redis-stream"} 3
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "eventfleet_bridge_published_total"); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		"eventfleet_bridge_rejected_total":    1,
		"eventfleet_bridge_redelivered_total": 1,
		"eventfleet_bridge_reconnects_total":  1,
		"eventfleet_bridge_in_flight":         7,
	} {
		if got := sample(t, m, name, "redis-stream"); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := sample(t, m, "eventfleet_bridge_dropped_total", "nats"); got != 5 {
		t.Errorf("dropped = %v, want 5", got)
	}
	var nilB *metrics.BridgeMetrics
	nilB.Published(1) // a nil *BridgeMetrics records nothing, and does not panic
	nilB.Dropped(1)
	nilB.InFlight(1)
}

func sample(t *testing.T, m *metrics.Metrics, name, source string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, m), "\n") {
		if strings.HasPrefix(line, name+`{source="`+source+`"} `) {
			var v float64
			if _, err := fmt.Sscan(strings.TrimPrefix(line, name+`{source="`+source+`"} `), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s for %s", name, source)
	return 0
}

func TestFanout_CountsPublishedAndUnheard(t *testing.T) {
	m := metrics.New()
	f := m.Fanout()
	f.Published(2)
	f.Published(0)
	f.Published(1)
	want := `
# HELP eventfleet_redis_fanout_published_total Events HANDLER=redis published to their Redis channel (PUBLISH answered; the delivery is then acked).
# TYPE eventfleet_redis_fanout_published_total counter
eventfleet_redis_fanout_published_total 3
# HELP eventfleet_redis_fanout_unheard_total Events published to a Redis channel that no client was subscribed to (PUBLISH answered 0): Redis kept nothing, they reached no one.
# TYPE eventfleet_redis_fanout_unheard_total counter
eventfleet_redis_fanout_unheard_total 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "eventfleet_redis_fanout_published_total", "eventfleet_redis_fanout_unheard_total"); err != nil {
		t.Fatal(err)
	}
	var nilF *metrics.FanoutMetrics
	nilF.Published(0) // records nothing, and does not panic
	if (*metrics.Metrics)(nil).Fanout() != nil {
		t.Error("a nil *Metrics gave a non-nil *FanoutMetrics")
	}
}
