package amqp

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// DefaultWindow is the default number of messages a Publisher keeps in flight
// awaiting confirms. Measured on our broker: a window of 256 reaches ~9.4k/s on
// a classic and ~15k/s on a quorum queue, where a window of 1 manages ~0.7k/s.
const DefaultWindow = 256

// PublisherConfig configures a Publisher. The zero value of every field means
// its default.
type PublisherConfig struct {
	// URL is the broker's AMQP URL. Defaults to DefaultURL.
	URL string
	// Exchange is the domain exchange. Defaults to DefaultExchange.
	Exchange string
	// AppID is put in every message's app_id property. Optional.
	AppID string
	// Window bounds the messages in flight awaiting a confirm; Publish waits
	// for a free slot. Defaults to DefaultWindow (256).
	Window int
	// Name is the connection name shown by the broker. Defaults to "eventfleet-publisher".
	Name string
	// Backoff is the reconnect schedule. Defaults to 100ms doubling up to 30s.
	Backoff retry.Backoff
	// Heartbeat is the AMQP heartbeat interval; a connection silent for about
	// three intervals is dropped and replaced. Defaults to DefaultHeartbeat (10s).
	Heartbeat time.Duration
	// Logger receives connection events. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records publishes and the connection's state. Defaults to
	// nil: no metrics.
	Metrics *metrics.Metrics
	// TracerProvider makes the publish spans. Defaults to otel's global
	// provider. Trace context is written to the messages either way.
	TracerProvider trace.TracerProvider

	// role is the connection's metrics role: metrics.RolePublisher, or
	// metrics.RoleHops for a Worker's hops (which are not counted as
	// published events).
	role string
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Name == "" {
		c.Name = "eventfleet-publisher"
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.role == "" {
		c.role = metrics.RolePublisher
	}
	return c
}

func (c PublisherConfig) validate() error {
	if len(c.AppID) > 255 {
		return fmt.Errorf("%w: app id is %d bytes, AMQP allows 255", ErrInvalidConfig, len(c.AppID))
	}
	if c.Window < 1 || c.Window > 65535 {
		return fmt.Errorf("%w: publish window must be 1..65535, got %d", ErrInvalidConfig, c.Window)
	}
	return validateURL(c.URL)
}
