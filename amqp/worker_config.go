package amqp

import (
	"fmt"
	"log/slog"
	"regexp"
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

var appNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// ValidateAppName checks an app name: it becomes part of queue names.
func ValidateAppName(app string) error {
	if !appNameRe.MatchString(app) {
		return fmt.Errorf("app name %q: use 1-200 letters, digits, '_', '-' or '.', starting with a letter or digit", app)
	}
	return nil
}

// WorkerConfig configures a Worker. The zero value of every field means its
// default.
type WorkerConfig struct {
	// URL is the broker's AMQP URL. Defaults to DefaultURL.
	URL string
	// Exchange is the domain exchange. Defaults to DefaultExchange.
	Exchange string
	// App names the app; its queue is "events_<App>". Required.
	App string
	// QueueType of the app's queue: QueueQuorum (default) or QueueClassic.
	// Delay, dead-letter and unrouted queues are always quorum queues.
	QueueType string
	// EventTypes are the binding keys of the app's queue. Empty means: the
	// types of an *event.Registry handler without catch-all, else all ("#").
	EventTypes []string
	// Concurrency is how many handlers run at once. Defaults to 16.
	Concurrency int
	// Prefetch is how many unacked deliveries the broker sends ahead.
	// Defaults to 64; it is raised to Concurrency if lower.
	Prefetch int
	// HandlerTimeout bounds one handler call: its context ends then, and a
	// timeout counts as a retryable failure. A handler still running a tenth
	// later (at most 1s) is abandoned and its event retried. Defaults to 30s.
	HandlerTimeout time.Duration
	// Retry is the delayed-retry policy. Defaults to 1s,10s,1m,5m and 5 attempts.
	Retry retry.Policy
	// DeliveryLimit is the quorum queue's x-delivery-limit: after that many
	// deliveries without ack (a worker crashing on the message each time) the
	// broker dead-letters it. Defaults to 20. Ignored for classic queues.
	DeliveryLimit int
	// MaxBody is the largest body accepted. A larger one is not read into
	// memory: its frames are discarded as they arrive, the delivery is
	// rejected, and the app queue's dead-lettering moves the message whole
	// to the dead-letter queue (reason "oversized"). A worker therefore
	// holds at most Prefetch bodies of MaxBody bytes. Defaults to 16 MiB.
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
	// (one passive declare per queue). Defaults to 15s.
	SampleInterval time.Duration
	// TracerProvider makes the process and settle spans. Defaults to otel's
	// global provider. The handler's context carries the publisher's trace
	// context either way.
	TracerProvider trace.TracerProvider
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.QueueType == "" {
		c.QueueType = QueueQuorum
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

func (c WorkerConfig) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case ValidateAppName(c.App) != nil:
		return bad("%v", ValidateAppName(c.App))
	case c.QueueType != QueueQuorum && c.QueueType != QueueClassic:
		return bad("queue type %q: use %q or %q", c.QueueType, QueueQuorum, QueueClassic)
	case c.Concurrency < 1:
		return bad("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Prefetch > 65535:
		return bad("prefetch must be at most 65535, got %d", c.Prefetch)
	case c.HandlerTimeout < 0:
		return bad("handler timeout must be positive, got %v", c.HandlerTimeout)
	case c.DeliveryLimit < 1:
		return bad("delivery limit must be at least 1, got %d", c.DeliveryLimit)
	case c.MaxBody < 0:
		return bad("max body must be positive, got %d", c.MaxBody)
	case c.SampleInterval < 0:
		return bad("sample interval must be positive, got %v", c.SampleInterval)
	}
	for _, k := range c.EventTypes {
		if err := ValidateBindingKey(k); err != nil {
			return bad("%v", err)
		}
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return validateURL(c.URL)
}
