package natsbridge

import (
	"errors"
	"fmt"

	"github.com/eventfleet/eventfleet/internal/lifecycle"
)

// Errors of this package. Test with errors.Is.
var (
	// ErrInvalidConfig: a Config field is refused; the error is a
	// *ConfigError naming the field.
	ErrInvalidConfig = errors.New("natsbridge: invalid configuration")
	// ErrConnect: the NATS server could not be reached, or refused the
	// connection (credentials), when the Bridge started.
	ErrConnect = errors.New("natsbridge: cannot connect to NATS")
	// ErrJetStream: JetStream refused the stream or the consumer the Bridge
	// needs (not enabled, a filter outside the stream's subjects, a
	// durable consumer configured otherwise).
	ErrJetStream = errors.New("natsbridge: JetStream setup failed")
	// ErrConnectionClosed: the NATS connection closed for good (nats.go
	// gave up reconnecting, or the server revoked the credentials).
	ErrConnectionClosed = errors.New("natsbridge: NATS connection closed")
	// ErrStreamLost: the JetStream stream was deleted (or deleted and
	// created again) under a running Bridge. The Bridge stops rather than
	// create it again: a new stream restarts its sequences, so ids
	// <stream>:<seq> would repeat ones the fleet already saw and be dropped
	// as duplicates. An operator recreates the stream and restarts the
	// relay.
	ErrStreamLost = errors.New("natsbridge: JetStream stream lost")
	// ErrStarted: Start was called twice.
	ErrStarted = lifecycle.ErrStarted
	// ErrStopped: Start after Stop.
	ErrStopped = lifecycle.ErrStopped
)

// ConfigError is a Config field New refuses. It names the field so that a
// caller filling Config from the environment (internal/config) can name its
// own variable instead.
type ConfigError struct {
	Field  string // the Go field, e.g. "Subject"
	Value  string // the refused value (a URL with its password hidden)
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
