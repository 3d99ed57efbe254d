package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// relayVecs are the outbox relay's metrics, by table.
type relayVecs struct {
	published *prometheus.CounterVec
	setAside  *prometheus.CounterVec
	leader    *prometheus.GaugeVec
	pending   *prometheus.GaugeVec
	oldest    *prometheus.GaugeVec
	held      *prometheus.GaugeVec
}

func newRelayVecs() relayVecs {
	return relayVecs{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_outbox_published_total",
			Help: "Outbox rows published (confirmed) and settled by this relay.",
		}, []string{"table"}),
		setAside: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_outbox_set_aside_total",
			Help: "Outbox rows this relay set aside (poison: invalid, or refused too often).",
		}, []string{"table"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_outbox_leader",
			Help: "1 while this relay holds the table and publishes it, 0 while it stands by.",
		}, []string{"table"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_outbox_pending_rows",
			Help: "Unsettled outbox rows, set-aside ones included, sampled by the publishing relay (at most 100000 counted); absent on a standby.",
		}, []string{"table"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_outbox_oldest_pending_seconds",
			Help: "Age of the oldest unsettled outbox row (0 when none), sampled by the publishing relay; absent on a standby.",
		}, []string{"table"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_outbox_set_aside_rows",
			Help: "Rows in the table's set-aside side table now, sampled by the publishing relay; absent on a standby.",
		}, []string{"table"}),
	}
}

func (v relayVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.published, v.setAside, v.leader, v.pending, v.oldest, v.held}
}

// RelayMetrics records one outbox table's relaying. A nil *RelayMetrics
// records nothing.
type RelayMetrics struct {
	published, setAside prometheus.Counter
	leader              prometheus.Gauge
	// The backlog gauges exist only while this relay leads and samples: a
	// standby's last sample would be stale, and another relay's is current.
	table                 string
	pending, oldest, held *prometheus.GaugeVec
}

// Relay returns the metrics of the relay of table; nil if m is nil.
func (m *Metrics) Relay(table string) *RelayMetrics {
	if m == nil {
		return nil
	}
	v := m.relay
	return &RelayMetrics{published: v.published.WithLabelValues(table), setAside: v.setAside.WithLabelValues(table),
		leader: v.leader.WithLabelValues(table), table: table, pending: v.pending, oldest: v.oldest, held: v.held}
}

// Published counts n rows published and settled.
func (r *RelayMetrics) Published(n int) {
	if r != nil {
		r.published.Add(float64(n))
	}
}

// SetAside counts one row set aside.
func (r *RelayMetrics) SetAside() {
	if r != nil {
		r.setAside.Inc()
	}
}

// Leader records whether this relay publishes the table. Leadership ending
// removes the backlog gauges until the relay leads and samples again.
func (r *RelayMetrics) Leader(leader bool) {
	if r == nil {
		return
	}
	if leader {
		r.leader.Set(1)
		return
	}
	// Before the leader gauge, so that no scrape sees a standby's backlog.
	for _, v := range []*prometheus.GaugeVec{r.pending, r.oldest, r.held} {
		v.DeleteLabelValues(r.table)
	}
	r.leader.Set(0)
}

// Backlog records a sample of the table: unsettled rows, the oldest one's
// age in seconds, and the rows set aside.
func (r *RelayMetrics) Backlog(pending int, oldestSeconds float64, setAside int) {
	if r == nil {
		return
	}
	r.pending.WithLabelValues(r.table).Set(float64(pending))
	r.oldest.WithLabelValues(r.table).Set(oldestSeconds)
	r.held.WithLabelValues(r.table).Set(float64(setAside))
}
