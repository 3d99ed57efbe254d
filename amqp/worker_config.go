package amqp

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// Worker defaults.
const (
	DefaultConcurrency    = 16
	DefaultPrefetch       = 64
	DefaultHandlerTimeout = 30 * time.Second
	DefaultMaxBody        = 16 << 20
	DefaultSampleInterval = 15 * time.Second
)

// Worker limits.
const (
	// MaxConcurrency bounds the handlers one Worker runs at once: each holds a
	// goroutine and up to MaxBody of body.
	MaxConcurrency = 10000
	// MaxPrefetch is the largest prefetch count basic.qos takes.
	MaxPrefetch = 65535
)

var appNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// ValidateAppName checks an app name: it becomes part of queue names. A
// name whose queue would be a name of another app's topology is refused:
// app "a.dead" would share "events_a.dead" with app a's dead-letter queue,
// "a.hops" would take app a's exchange, "a.retry.1s" a delay queue of app a,
// and the permission patterns of docs/least-privilege.md, which match
// names, would give each app's user the other's.
func ValidateAppName(app string) error {
	if err := ValidateAppID(app); err != nil {
		return err
	}
	q := AppQueue(app)
	for _, suffix := range []string{".hops", ".dead"} {
		if strings.HasSuffix(app, suffix) {
			return fmt.Errorf("app name %q ends in %q: its queue %q would be app %q's %s; choose a name without it",
				app, suffix, q, strings.TrimSuffix(app, suffix), ownNameKind[suffix])
		}
	}
	if i := strings.Index(app, ".retry."); i >= 0 {
		return fmt.Errorf("app name %q contains \".retry.\": its queue %q would be a name of app %q's delay queues; choose a name without it",
			app, q, app[:i])
	}
	return nil
}

// ownNameKind names what an app's name suffix is in its topology.
var ownNameKind = map[string]string{".hops": "exchange", ".dead": "dead-letter queue"}

// ValidateAppID checks the characters of an app name, as a publisher's
// app_id: ValidateAppName without its check for names of another app's
// topology, which only matters where the name becomes queue names.
func ValidateAppID(app string) error {
	if !appNameRe.MatchString(app) {
		return fmt.Errorf("app name %q: use 1-200 letters, digits, '_', '-' or '.', starting with a letter or digit", app)
	}
	return nil
}

// WorkerConfig configures a Worker. The zero value of every field means its
// default.
type WorkerConfig struct {
	// URL is the broker's AMQP URL, or several separated by commas: the
	// nodes of one cluster, each URL with its own user, password, vhost
	// and TLS parameters. With several, each connection starts at a random
	// one (a fleet spreads over the nodes) and moves to the next after a
	// failed connect or a lost connection, trying each once before it
	// backs off (see Node). Defaults to DefaultURL.
	URL string
	// TLS are the TLS settings of an amqps:// URL given apart from it; each
	// set field wins over its URL parameter (see TLSFiles). Defaults to
	// none: the URL's parameters alone.
	TLS TLSFiles
	// Exchange is the domain exchange. Defaults to DefaultExchange.
	Exchange string
	// Topology says what the Worker does with the domain exchange when it
	// connects: TopologyDeclare declares it (and its unrouted queue),
	// TopologyPassive only checks that the exchange exists, for a broker
	// user without configure permission on it. The app's own exchange and
	// queues are declared either way. Defaults to TopologyDeclare.
	Topology string
	// App names the app; its queue is "events_<App>". Required.
	App string
	// QueueType of the app's queue: QueueQuorum or QueueClassic. Delay,
	// dead-letter and unrouted queues are always quorum queues. Defaults to
	// QueueQuorum.
	QueueType string
	// EventTypes are the binding keys of the app's queue. Empty means: the
	// types of an *event.Registry handler without catch-all, else all ("#").
	EventTypes []string
	// Concurrency is how many handlers run at once, 1..MaxConcurrency.
	// Defaults to DefaultConcurrency (16).
	Concurrency int
	// Prefetch is how many unacked deliveries the broker sends ahead,
	// 1..MaxPrefetch; it is raised to Concurrency if lower. Defaults to
	// DefaultPrefetch (64).
	Prefetch int
	// HandlerTimeout bounds one handler call: its context ends then, and a
	// timeout counts as a retryable failure. A handler still running a tenth
	// later (at most 1s) is abandoned and its event retried. Defaults to
	// DefaultHandlerTimeout (30s).
	HandlerTimeout time.Duration
	// Retry is the delayed-retry policy. Defaults to retry.DefaultDelays
	// (1s,10s,1m,5m) and retry.DefaultMaxAttempts (5).
	Retry retry.Policy
	// DeliveryLimit is the quorum queue's x-delivery-limit: after that many
	// deliveries without ack (a worker crashing on the message each time) the
	// broker dead-letters it. Defaults to DefaultDeliveryLimit (20). Ignored
	// for classic queues.
	DeliveryLimit int
	// QuorumInitialGroupSize is the x-quorum-initial-group-size of the
	// quorum queues the Worker creates (the app's queue when a quorum
	// queue, its delay and dead-letter queues, the unrouted queue): how
	// many cluster nodes hold a replica of each. 0 passes none, and the
	// broker's default applies: 3, or every node of a smaller cluster
	// (replication.go). A queue that exists keeps the replicas it was
	// created with. Defaults to 0.
	QuorumInitialGroupSize int
	// MaxBody is the largest body accepted. A larger one is not read into
	// memory: its frames are discarded as they arrive, the delivery is
	// rejected, and the app queue's dead-lettering moves the message whole
	// to the dead-letter queue (reason "oversized"). A worker therefore
	// holds at most Prefetch bodies of MaxBody bytes. Defaults to
	// DefaultMaxBody (16 MiB).
	MaxBody int
	// Backoff is the reconnect schedule. Defaults to 100ms doubling up to 30s.
	Backoff retry.Backoff
	// Heartbeat is the AMQP heartbeat interval of both connections.
	// Defaults to DefaultHeartbeat (10s).
	Heartbeat time.Duration
	// Logger receives worker events. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records deliveries, handler calls, connections and sampled
	// queue depths. Defaults to nil: no metrics.
	Metrics *metrics.Metrics
	// SampleInterval is how often queue depths are sampled for Metrics
	// (one passive declare per queue). Defaults to DefaultSampleInterval (15s).
	SampleInterval time.Duration
	// TracerProvider makes the process and settle spans. Defaults to otel's
	// global provider. The handler's context carries the publisher's trace
	// context either way.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns c with every zero field set to its default, and
// Prefetch raised to Concurrency. It is the one place the defaults are
// filled in: NewWorker calls it, and so does a caller that wants to show or
// adjust them (internal/config).
func (c WorkerConfig) WithDefaults() WorkerConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.QueueType == "" {
		c.QueueType = QueueQuorum
	}
	if c.Topology == "" {
		c.Topology = TopologyDeclare
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	c.Prefetch = max(c.Prefetch, c.Concurrency)
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	c.Retry = c.Retry.WithDefaults()
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = DefaultDeliveryLimit
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	return c
}

// Validate reports the first field NewWorker refuses, as a *ConfigError.
// It checks c as it is, a zero field included: call it on c.WithDefaults(),
// as NewWorker does.
func (c WorkerConfig) Validate() error {
	if err := ValidateAppName(c.App); err != nil {
		return configError("App", c.App, err.Error())
	}
	if err := ValidateExchange(c.Exchange); err != nil {
		return configError("Exchange", c.Exchange, err.Error())
	}
	if err := validateTopology("Topology", c.Topology); err != nil {
		return err
	}
	switch {
	case c.QueueType != QueueQuorum && c.QueueType != QueueClassic:
		return configError("QueueType", c.QueueType, fmt.Sprintf("use %s or %s", QueueQuorum, QueueClassic))
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return configError("Concurrency", c.Concurrency, fmt.Sprintf("must be 1..%d", MaxConcurrency))
	case c.Prefetch < 1 || c.Prefetch > MaxPrefetch:
		return configError("Prefetch", c.Prefetch, fmt.Sprintf("must be 1..%d", MaxPrefetch))
	case c.HandlerTimeout <= 0:
		return configError("HandlerTimeout", c.HandlerTimeout, "must be positive")
	case c.DeliveryLimit < 1:
		return configError("DeliveryLimit", c.DeliveryLimit, "must be at least 1")
	case c.MaxBody < 1:
		return configError("MaxBody", c.MaxBody, "must be positive")
	case c.SampleInterval <= 0:
		return configError("SampleInterval", c.SampleInterval, "must be positive")
	}
	if err := validateGroupSize(c.QuorumInitialGroupSize); err != nil {
		return err
	}
	for _, k := range c.EventTypes {
		if err := ValidateBindingKey(k); err != nil {
			return configError("EventTypes", k, err.Error())
		}
	}
	// The policy's two fields are asked about one at a time, so that the
	// error names the one at fault.
	if err := (retry.Policy{MaxAttempts: c.Retry.MaxAttempts}).Validate(); err != nil {
		return &ConfigError{Field: "Retry.MaxAttempts", Value: fmt.Sprint(c.Retry.MaxAttempts), Reason: err.Error(), Err: err}
	}
	if err := c.Retry.Validate(); err != nil {
		return &ConfigError{Field: "Retry.Delays", Value: fmt.Sprint(c.Retry.Delays), Reason: err.Error(), Err: err}
	}
	if err := tlsConfigError(c.URL, c.TLS); err != nil {
		return err
	}
	if err := validateURL(c.URL, c.TLS); err != nil {
		return urlConfigError("URL", c.URL, err)
	}
	return nil
}
