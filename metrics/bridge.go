package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// bridgeVecs are the relay's Redis and NATS sources' metrics, by source
// (redis, redis-stream, nats, jetstream).
type bridgeVecs struct {
	published   *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	retried     *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	reconnects  *prometheus.CounterVec
	inFlight    *prometheus.GaugeVec
}

func newBridgeVecs() bridgeVecs {
	return bridgeVecs{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_published_total",
			Help: "Source messages published (confirmed) and then settled at the source (XACK, JetStream ack; pub/sub and core NATS have nothing to settle).",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_rejected_total",
			Help: "Source messages that cannot be events (bad name, body not a JSON object, unusable aggregateId, refused by the broker), set aside as the source allows.",
		}, []string{"source"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_redelivered_total",
			Help: "Source messages delivered to the bridge again (claimed pending Redis entries, JetStream redeliveries): each may be published twice, with the same event id.",
		}, []string{"source"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_retried_total",
			Help: "Source messages the broker did not confirm, given back to the source to come again later (JetStream Nak with a delay). A nack or a confirm timeout may have left a copy at the broker, so the message's next delivery can be a duplicate (with the same id); a return cannot.",
		}, []string{"source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_dropped_total",
			Help: "Messages the at-most-once sources report lost (NATS slow-consumer drops); a Redis pub/sub disconnect loses an unknown number and counts in eventfleet_bridge_reconnects_total.",
		}, []string{"source"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_bridge_reconnects_total",
			Help: "Connections to the source re-established after a loss (at-most-once sources lose what was published meanwhile).",
		}, []string{"source"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_bridge_in_flight",
			Help: "Source messages taken and not yet settled (bounded by PUBLISH_WINDOW).",
		}, []string{"source"}),
	}
}

func (v bridgeVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.published, v.rejected, v.redelivered, v.retried, v.dropped, v.reconnects, v.inFlight}
}

// BridgeMetrics records one relay source's bridging. A nil *BridgeMetrics
// records nothing.
type BridgeMetrics struct {
	published, rejected, redelivered, retried, dropped, reconnects prometheus.Counter
	inFlight                                                       prometheus.Gauge
}

// Bridge returns the metrics of the relay source named source; nil if m is
// nil.
func (m *Metrics) Bridge(source string) *BridgeMetrics {
	if m == nil {
		return nil
	}
	v := m.bridge
	return &BridgeMetrics{published: v.published.WithLabelValues(source), rejected: v.rejected.WithLabelValues(source),
		redelivered: v.redelivered.WithLabelValues(source), retried: v.retried.WithLabelValues(source), dropped: v.dropped.WithLabelValues(source),
		reconnects: v.reconnects.WithLabelValues(source), inFlight: v.inFlight.WithLabelValues(source)}
}

// Published counts n messages published and settled.
func (b *BridgeMetrics) Published(n int) {
	if b != nil {
		b.published.Add(float64(n))
	}
}

// Rejected counts one message set aside.
func (b *BridgeMetrics) Rejected() {
	if b != nil {
		b.rejected.Inc()
	}
}

// Redelivered counts one message the source delivered again.
func (b *BridgeMetrics) Redelivered() {
	if b != nil {
		b.redelivered.Inc()
	}
}

// Retried counts one message given back to its source after the broker
// did not confirm it.
func (b *BridgeMetrics) Retried() {
	if b != nil {
		b.retried.Inc()
	}
}

// Dropped counts n messages the source reported lost.
func (b *BridgeMetrics) Dropped(n int) {
	if b != nil {
		b.dropped.Add(float64(n))
	}
}

// Reconnected counts one connection re-established.
func (b *BridgeMetrics) Reconnected() {
	if b != nil {
		b.reconnects.Inc()
	}
}

// InFlight records the messages taken and not yet settled.
func (b *BridgeMetrics) InFlight(n int) {
	if b != nil {
		b.inFlight.Set(float64(n))
	}
}
