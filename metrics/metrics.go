package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Publish outcomes (label outcome of eventfleet_published_total).
const (
	// Confirmed: the broker confirmed the event and routed it to a queue.
	Confirmed = "confirmed"
	// Returned: no queue was bound for the event; it was kept in the
	// unrouted queue (and the publish succeeded).
	Returned = "returned"
	// Nacked: the broker refused the event (basic.nack).
	Nacked = "nacked"
	// Error: anything else that failed the publish (timeout, closed,
	// invalid event, connection lost for good).
	Error = "error"
)

// Consume outcomes (label outcome of eventfleet_consumed_total).
const (
	// Ack: the handler succeeded and the delivery was acked.
	Ack = "ack"
	// Retry: the event went to a delay queue for a later attempt.
	Retry = "retry"
	// DeadLetter: the event went to the app's dead-letter queue.
	DeadLetter = "dead_letter"
	// Requeue: moving the event failed; it was handed back to the broker,
	// which delivers it again.
	Requeue = "requeue"
)

// Connection roles (label role).
const (
	RolePublisher = "publisher"
	RoleConsumer  = "consumer"
	RoleHops      = "hops"
)

// Queue kinds (label kind of eventfleet_queue_messages).
const (
	KindApp        = "app"
	KindRetry      = "retry"
	KindDeadLetter = "dead_letter"
)

// MaxTypes bounds the distinct values of the type label; further event types
// are counted under OtherType.
const MaxTypes = 500

// OtherType, UnknownType and InvalidType are the type label of events past
// MaxTypes, of events without a type, and of types that cannot be a label
// value (not UTF-8, or longer than 255 bytes).
const (
	OtherType   = "other"
	UnknownType = "unknown"
	InvalidType = "invalid"
)

// Metrics holds every eventfleet metric. The zero value is not usable; call
// New. A nil *Metrics records nothing. Metrics is a prometheus.Collector, so
// it can be registered in a registry of the caller's own.
type Metrics struct {
	published      *prometheus.CounterVec
	confirm        prometheus.Histogram
	consumed       *prometheus.CounterVec
	handler        *prometheus.HistogramVec
	inflight       *prometheus.GaugeVec
	up             *prometheus.GaugeVec
	reconnects     *prometheus.CounterVec
	blocked        *prometheus.GaugeVec
	blockedSeconds *prometheus.CounterVec
	depth          *prometheus.GaugeVec
	build          *prometheus.GaugeVec
	relay          relayVecs
	bridge         bridgeVecs
	// fanoutPublished and fanoutUnheard are HANDLER=redis's (fanout.go).
	fanoutPublished, fanoutUnheard, fanoutEcho prometheus.Counter

	mu    sync.Mutex
	types map[string]bool
	pub   sync.Map // type → *pubCounters
}

// latencyBuckets span a confirm on loopback (~1ms) to a stalled broker (10s).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns metrics that are not registered anywhere; Handler serves them.
func New() *Metrics {
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_published_total",
			Help: "Events published, by event type and outcome (confirmed, returned = kept in the unrouted queue, nacked, error).",
		}, []string{"type", "outcome"}),
		confirm: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventfleet_publish_confirm_seconds",
			Help:    "Time from publishing an event to the broker's confirm (ack or nack), republishes included.",
			Buckets: latencyBuckets,
		}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_consumed_total",
			Help: "Deliveries settled, by app, event type and outcome (ack, retry, dead_letter, requeue).",
		}, []string{"app", "type", "outcome"}),
		handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventfleet_handler_duration_seconds",
			Help:    "Duration of handler calls, by app and event type, failures included.",
			Buckets: latencyBuckets,
		}, []string{"app", "type"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_deliveries_in_flight",
			Help: "Deliveries taken from the queue and not yet settled.",
		}, []string{"app"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_connection_up",
			Help: "1 while the connection of this role is open and usable, else 0.",
		}, []string{"role"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_reconnects_total",
			Help: "Connections re-established after a loss.",
		}, []string{"role"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_blocked",
			Help: "1 while the broker blocks this connection's publishing (memory or disk alarm).",
		}, []string{"role"}),
		blockedSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfleet_blocked_seconds_total",
			Help: "Time the broker blocked this connection's publishing, added when the block ends.",
		}, []string{"role"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_queue_messages",
			Help: "Messages ready in a queue, sampled periodically by the worker (kind: app, retry, dead_letter).",
		}, []string{"queue", "kind"}),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfleet_build_info",
			Help: "Always 1; its labels say which build runs: module version, VCS revision and Go version.",
		}, []string{"version", "revision", "go_version"}),
		relay:  newRelayVecs(),
		bridge: newBridgeVecs(),
		types:  map[string]bool{},
	}
	m.fanoutPublished, m.fanoutUnheard, m.fanoutEcho = newFanout()
	version, revision := buildVersion()
	m.build.WithLabelValues(version, revision, runtime.Version()).Set(1)
	return m
}

// buildVersion reads the main module's version and VCS revision from the
// binary's build information ("unknown" where there is none, as in tests).
func buildVersion() (version, revision string) {
	version, revision = "unknown", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision
	}
	if v := info.Main.Version; v != "" {
		version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return version, revision
}

func (m *Metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.published, m.confirm, m.consumed, m.handler, m.inflight,
		m.up, m.reconnects, m.blocked, m.blockedSeconds, m.depth, m.build, m.fanoutPublished, m.fanoutUnheard, m.fanoutEcho}, append(m.relay.collectors(), m.bridge.collectors()...)...)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Handler serves m together with the Go runtime and process metrics in the
// Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// typeLabel bounds the type label (see MaxTypes).
func (m *Metrics) typeLabel(t string) string {
	switch {
	case t == "":
		return UnknownType
	case len(t) > 255 || !utf8.ValidString(t):
		// Prometheus refuses (panics on) label values that are not UTF-8.
		return InvalidType
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.types[t] {
		return t
	}
	if len(m.types) >= MaxTypes {
		return OtherType
	}
	m.types[t] = true
	return t
}

type pubCounters struct {
	confirmed, returned, nacked, failed prometheus.Counter
}

// Published counts one publish of an event of type typ with its outcome;
// took is the time to the broker's answer, observed for every outcome but
// Error.
func (m *Metrics) Published(typ, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	c, ok := m.pub.Load(typ)
	if !ok {
		l := m.typeLabel(typ)
		c, _ = m.pub.LoadOrStore(typ, &pubCounters{
			confirmed: m.published.WithLabelValues(l, Confirmed),
			returned:  m.published.WithLabelValues(l, Returned),
			nacked:    m.published.WithLabelValues(l, Nacked),
			failed:    m.published.WithLabelValues(l, Error),
		})
	}
	pc := c.(*pubCounters)
	switch outcome {
	case Confirmed:
		pc.confirmed.Inc()
	case Returned:
		pc.returned.Inc()
	case Nacked:
		pc.nacked.Inc()
	default:
		pc.failed.Inc()
		return
	}
	m.confirm.Observe(took.Seconds())
}

// Worker returns the metrics of one app's worker; nil if m is nil.
func (m *Metrics) Worker(app string) *WorkerMetrics {
	if m == nil {
		return nil
	}
	return &WorkerMetrics{m: m, app: app, inflight: m.inflight.WithLabelValues(app)}
}

// WorkerMetrics records one app's consuming. A nil *WorkerMetrics records
// nothing.
type WorkerMetrics struct {
	m        *Metrics
	app      string
	inflight prometheus.Gauge
	byType   sync.Map // type → *conCounters
}

type conCounters struct {
	ack, retry, dead, requeue prometheus.Counter
	handler                   prometheus.Observer
}

func (w *WorkerMetrics) counters(typ string) *conCounters {
	c, ok := w.byType.Load(typ)
	if !ok {
		l := w.m.typeLabel(typ)
		c, _ = w.byType.LoadOrStore(typ, &conCounters{
			ack:     w.m.consumed.WithLabelValues(w.app, l, Ack),
			retry:   w.m.consumed.WithLabelValues(w.app, l, Retry),
			dead:    w.m.consumed.WithLabelValues(w.app, l, DeadLetter),
			requeue: w.m.consumed.WithLabelValues(w.app, l, Requeue),
			handler: w.m.handler.WithLabelValues(w.app, l),
		})
	}
	return c.(*conCounters)
}

// Handled records one handler call of an event of type typ.
func (w *WorkerMetrics) Handled(typ string, took time.Duration) {
	if w == nil {
		return
	}
	w.counters(typ).handler.Observe(took.Seconds())
}

// Settled counts one delivery's outcome (Ack, Retry, DeadLetter, Requeue).
func (w *WorkerMetrics) Settled(typ, outcome string) {
	if w == nil {
		return
	}
	c := w.counters(typ)
	switch outcome {
	case Ack:
		c.ack.Inc()
	case Retry:
		c.retry.Inc()
	case DeadLetter:
		c.dead.Inc()
	default:
		c.requeue.Inc()
	}
}

// InFlight adds delta to the deliveries in flight.
func (w *WorkerMetrics) InFlight(delta int) {
	if w == nil {
		return
	}
	w.inflight.Add(float64(delta))
}

// QueueDepth records a sampled queue depth.
func (w *WorkerMetrics) QueueDepth(queue, kind string, messages int) {
	if w == nil {
		return
	}
	w.m.depth.WithLabelValues(queue, kind).Set(float64(messages))
}

// Conn returns the metrics of one connection role; nil if m is nil.
func (m *Metrics) Conn(role string) *ConnMetrics {
	if m == nil {
		return nil
	}
	return &ConnMetrics{
		up:         m.up.WithLabelValues(role),
		reconnects: m.reconnects.WithLabelValues(role),
		blocked:    m.blocked.WithLabelValues(role),
		blockedSec: m.blockedSeconds.WithLabelValues(role),
	}
}

// ConnMetrics records one connection's state. A nil *ConnMetrics records
// nothing.
type ConnMetrics struct {
	up, blocked            prometheus.Gauge
	reconnects, blockedSec prometheus.Counter

	mu           sync.Mutex
	connected    bool // connected once before: the next Up(true) is a reconnect
	blockedSince time.Time
}

// Up records the connection opening (true) or closing (false). An opening
// after the first counts as a reconnect; a close ends a block.
func (c *ConnMetrics) Up(up bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if up {
		if c.connected {
			c.reconnects.Inc()
		}
		c.connected = true
		c.up.Set(1)
		return
	}
	c.up.Set(0)
	c.endBlock()
}

// Blocked records the broker blocking (true) or unblocking (false) the
// connection.
func (c *ConnMetrics) Blocked(blocked bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if blocked {
		if c.blockedSince.IsZero() {
			c.blockedSince = time.Now()
			c.blocked.Set(1)
		}
		return
	}
	c.endBlock()
}

func (c *ConnMetrics) endBlock() {
	if c.blockedSince.IsZero() {
		return
	}
	c.blockedSec.Add(time.Since(c.blockedSince).Seconds())
	c.blockedSince = time.Time{}
	c.blocked.Set(0)
}
