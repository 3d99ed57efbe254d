package amqp

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// DefaultWindow is the default number of messages a Publisher keeps in flight
// awaiting confirms: throughput follows the window up to about this size
// (docs/benchmarks.md).
const DefaultWindow = 256

// PublisherConfig configures a Publisher. The zero value of every field means
// its default.
type PublisherConfig struct {
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
	// Topology says what the Publisher does with the domain exchange and
	// its unrouted queue when it connects: TopologyDeclare declares them,
	// TopologyPassive only checks that they exist, for a broker user
	// without configure permission on them. Defaults to TopologyDeclare.
	Topology string
	// QuorumInitialGroupSize is the x-quorum-initial-group-size of the
	// unrouted queue when the Publisher creates it: how many cluster nodes
	// hold a replica. 0 passes none, and the broker's default applies (3,
	// or every node of a smaller cluster; replication.go); a queue that
	// exists keeps its own. Defaults to 0.
	QuorumInitialGroupSize int
	// SendOnly is for a Publisher that only sends prepared messages
	// (PublishMessage, SendMessage) and keeps no unrouted copies, such as
	// `worker dlq replay`'s: Topology then declares or checks the domain
	// exchange alone, not the unrouted queue and exchange, which it does not
	// use and which may not exist yet. Publish on it fails with
	// ErrInvalidConfig, and so does PublishBatch. Defaults to false.
	SendOnly bool
	// AppID is put in the app_id property of every message whose event has
	// no Source of its own. Optional.
	AppID string
	// Window bounds the messages in flight awaiting a confirm; Publish waits
	// for a free slot. Defaults to DefaultWindow (256).
	Window int
	// Name is the connection name shown by the broker. Defaults to "eventfleet-publisher".
	Name string
	// Backoff is the reconnect schedule. Defaults to 100ms doubling up to 30s.
	Backoff retry.Backoff
	// StopOnRefusal stops the Publisher (Done, Err) at the first connect
	// error only an operator can fix (IsRefusal: ErrAccessRefused,
	// ErrVhostNotFound, ErrTLS; and ErrTopologyMissing, the shared
	// topology TopologyPassive found missing; with a list of URLs, once
	// every address was tried since the last connection and one of them
	// refused), or at the first publish the
	// broker refuses (IsPublishRefusal: no write permission, no such
	// exchange), instead of retrying it: for a command-line tool, which
	// should say why and exit. Defaults to false: a server keeps retrying
	// with Backoff, publishes the refusal covers fail at once meanwhile, and
	// LastError says why.
	StopOnRefusal bool
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
	// ownTopology, for a Worker's hops, declares the app's own exchange,
	// queues and bindings on a connection: on every connect, and again when
	// a hop finds them missing (own_topology.go). The hops connection owns
	// what it publishes to; it declares nothing shared.
	ownTopology func(*amqp091.Connection) error
	// hopsExchange, for a Worker's hops, is the app's exchange they are
	// published to (a refusal there is the refusal of every hop).
	hopsExchange string
}

// WithDefaults returns c with every zero field set to its default. It is
// the one place the defaults are filled in: NewPublisher calls it, and so
// does a caller that wants to show or adjust them (internal/config).
func (c PublisherConfig) WithDefaults() PublisherConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Topology == "" {
		c.Topology = TopologyDeclare
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

// MaxWindow is the largest Window: the most unconfirmed publishes a channel
// keeps track of.
const MaxWindow = 65535

// Validate reports the first field NewPublisher refuses, as a *ConfigError.
// It checks c as it is, a zero field included: call it on c.WithDefaults(),
// as NewPublisher does.
func (c PublisherConfig) Validate() error {
	switch {
	case len(c.AppID) > 255:
		return configError("AppID", c.AppID, fmt.Sprintf("is %d bytes, AMQP allows 255", len(c.AppID)))
	case c.Window < 1 || c.Window > MaxWindow:
		return configError("Window", c.Window, fmt.Sprintf("must be 1..%d", MaxWindow))
	}
	if err := ValidateExchange(c.Exchange); err != nil {
		return configError("Exchange", c.Exchange, err.Error())
	}
	if err := validateTopology("Topology", c.Topology); err != nil {
		return err
	}
	if err := validateGroupSize(c.QuorumInitialGroupSize); err != nil {
		return err
	}
	if err := tlsConfigError(c.URL, c.TLS); err != nil {
		return err
	}
	if err := validateURL(c.URL, c.TLS); err != nil {
		return urlConfigError("URL", c.URL, err)
	}
	return nil
}

// ValidateExchange checks a domain exchange's name: the unrouted queue's name
// is made from it.
func ValidateExchange(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return errors.New("must be 1-200 characters")
	}
	return nil
}
