package config

import (
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/redisfanout"
	"github.com/eventfleet/eventfleet/webhook"
)

// The binaries' own defaults. The library's settings take theirs from the
// library (amqp.WorkerConfig{}.WithDefaults() and friends), never from here;
// the README's table is checked against both by TestREADME_SettingsTable.
const (
	// DefaultLogLevel is LOG_LEVEL's default.
	DefaultLogLevel = "info"
	// DefaultMetricsAddr is METRICS_ADDR's default.
	DefaultMetricsAddr = ":9090"
	// DefaultPublisherAddr is PUBLISHER_ADDR's default.
	DefaultPublisherAddr = ":8080"
	// DefaultPublishTimeout is PUBLISH_TIMEOUT's default for `publisher
	// serve`: the ingest's own.
	DefaultPublishTimeout = ingest.DefaultTimeout
	// DefaultPublisherMaxBody is PUBLISHER_MAX_BODY's default: the ingest's own.
	DefaultPublisherMaxBody = ingest.DefaultMaxBody
	// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default, for both
	// binaries: under the 30 s an orchestrator usually waits after SIGTERM.
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultHandler is HANDLER's default.
	DefaultHandler = "log"
)

// DefaultProgressTimeout is PUBLISH_TIMEOUT for `publisher publish` when it
// is not set. A batch run is unattended: it should ride through a broker
// restart (a node boots in 5-15 s, and reconnecting adds up to 5 s) and a
// partition until the heartbeat notices it (about 30 s), and fail only when
// the broker stays away.
const DefaultProgressTimeout = time.Minute

// The defaults are filled in before the environment is read, so that a
// variable that is unset (or empty) keeps them and one that is set, even to
// 0, replaces them; the library's Validate then refuses an explicit 0.

func defaultBroker() Broker {
	d := amqp.PublisherConfig{}.WithDefaults()
	return Broker{AMQPURL: d.URL, Exchange: d.Exchange, Topology: d.Topology, LogLevel: DefaultLogLevel}
}

func defaultTelemetry() Telemetry { return Telemetry{MetricsAddr: DefaultMetricsAddr} }

func defaultPublisher() Publisher {
	d := amqp.PublisherConfig{}.WithDefaults()
	return Publisher{
		Broker:          defaultBroker(),
		Telemetry:       defaultTelemetry(),
		Addr:            DefaultPublisherAddr,
		Window:          d.Window,
		Timeout:         DefaultPublishTimeout,
		MaxBody:         DefaultPublisherMaxBody,
		ShutdownTimeout: DefaultShutdownTimeout,
		Auth:            AuthKeys,
		MaxEvents:       ingest.DefaultMaxEvents,
		MaxInFlight:     ingest.DefaultMaxInFlight,
		MaxDepth:        ingest.DefaultMaxDepth,
	}
}

func defaultWorker() Worker {
	d := amqp.WorkerConfig{}.WithDefaults()
	rd := redisfanout.Config{}.WithDefaults()
	return Worker{
		Broker:           defaultBroker(),
		Telemetry:        defaultTelemetry(),
		QueueType:        d.QueueType,
		Concurrency:      d.Concurrency,
		Prefetch:         d.Prefetch,
		HandlerTimeout:   d.HandlerTimeout,
		RetryDelays:      formatDelays(d.Retry.Delays),
		RetryMaxAttempts: d.Retry.MaxAttempts,
		DeliveryLimit:    d.DeliveryLimit,
		MaxBody:          d.MaxBody,
		ShutdownTimeout:  DefaultShutdownTimeout,
		Handler:          DefaultHandler,
		WebhookTimeout:   webhook.Config{}.WithDefaults().Timeout,
		RedisURL:         rd.URL,
		RedisChannel:     rd.Channel,
		RedisTimeout:     rd.Timeout,
	}
}

func defaultInspect() Inspect {
	return Inspect{Broker: defaultBroker(), MaxBody: amqp.WorkerConfig{}.WithDefaults().MaxBody}
}

// formatDelays writes delays as RETRY_DELAYS takes them, each as short as
// it reads ("1m", not "1m0s").
func formatDelays(delays []time.Duration) string {
	s := make([]string, len(delays))
	for i, d := range delays {
		s[i] = FormatDuration(d)
	}
	return strings.Join(s, ",")
}

// FormatDuration writes d as the README and the help do: "1m", "5m", "1h",
// not time.Duration's "1m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
