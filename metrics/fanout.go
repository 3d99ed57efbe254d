package metrics

import "github.com/prometheus/client_golang/prometheus"

// newFanout makes HANDLER=redis's metrics (package redisfanout).
func newFanout() (published, unheard, echo prometheus.Counter) {
	return prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfleet_redis_fanout_published_total",
			Help: "Events HANDLER=redis published to their Redis channel (PUBLISH answered; the delivery is then acked).",
		}), prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfleet_redis_fanout_unheard_total",
			Help: "Events published to a Redis channel that no client was subscribed to (PUBLISH answered 0): Redis kept nothing, they reached no one.",
		}), prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfleet_redis_fanout_echo_skipped_total",
			Help: "Events not published because `publisher relay` (RELAY_SOURCE=redis) took them from that very channel: its subscribers had them, and publishing them again would loop.",
		})
}

// FanoutMetrics records HANDLER=redis's publishes. A nil *FanoutMetrics
// records nothing.
type FanoutMetrics struct {
	published, unheard, echo prometheus.Counter
}

// Fanout returns the Redis fan-out's metrics; nil if m is nil.
func (m *Metrics) Fanout() *FanoutMetrics {
	if m == nil {
		return nil
	}
	return &FanoutMetrics{published: m.fanoutPublished, unheard: m.fanoutUnheard, echo: m.fanoutEcho}
}

// Published counts one event published; receivers is what PUBLISH
// answered (the subscribers that got it).
func (f *FanoutMetrics) Published(receivers int64) {
	if f == nil {
		return
	}
	f.published.Inc()
	if receivers == 0 {
		f.unheard.Inc()
	}
}

// Echo counts one event not published back onto the channel it came from.
func (f *FanoutMetrics) Echo() {
	if f != nil {
		f.echo.Inc()
	}
}
