package redisbridge_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// gauge is the value of the series name{source=source} in m.
func gauge(t testing.TB, m *metrics.Metrics, name, source string) float64 {
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
					return s.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{source=%q}", name, source)
	return 0
}

// The in-flight gauge follows the count however the reader's increments
// and the publishers' decrements interleave: once everything settled it
// reads 0. (Set after an unordered Add could leave it at a stale count.)
func TestStream_InFlightGaugeEndsAtZero(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	const n = 2000
	p := c.Pipeline()
	for range n {
		p.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{}`}})
	}
	if _, err := p.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1", Window: 64, Metrics: m}, pub)
	brokertest.Eventually(t, 30*time.Second, "all published", func() bool {
		s := b.Stats()
		return s.Published == n && s.InFlight == 0
	})
	if g := gauge(t, m, "eventfleet_bridge_in_flight", "redis-stream"); g != 0 {
		t.Fatalf("eventfleet_bridge_in_flight %v after everything settled, want 0", g)
	}
}
