package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds the wait for the confirms of one request.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBody is the largest request body, in bytes: 1 MiB.
	DefaultMaxBody = 1 << 20
)

// ErrInvalidConfig wraps every error of New.
var ErrInvalidConfig = errors.New("ingest: invalid configuration")

// Publisher is what the Handler needs from *amqp.Publisher.
type Publisher interface {
	// PublishBatch returns nil once every event is confirmed, else an error;
	// an *amqp.BatchError says which events were not confirmed. It fills in
	// the ids that were empty.
	PublishBatch(ctx context.Context, evs []event.Event) error
	// Connected tells a 503's reason: no connection, or no confirm.
	Connected() bool
}

// Middleware wraps the events endpoint; see Config.Middleware.
type Middleware func(http.Handler) http.Handler

// Config configures New. The zero value of every field but Publisher means
// its default.
type Config struct {
	// Publisher sends the events. Required.
	Publisher Publisher
	// Timeout bounds the wait for the confirms of one request; what is not
	// confirmed by then is answered 503. Defaults to DefaultTimeout (10s).
	Timeout time.Duration
	// MaxBody is the largest request body in bytes; a larger one is
	// answered 413. Defaults to DefaultMaxBody (1 MiB).
	MaxBody int64
	// Logger gets a line per request at DEBUG and one per 503 at WARN.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Middleware wraps the events endpoint, the first element outermost:
	// it sees a request before its method, type or body is looked at.
	// Defaults to none.
	Middleware []Middleware
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Publisher == nil:
		return fmt.Errorf("%w: no Publisher", ErrInvalidConfig)
	case c.Timeout < 0:
		return fmt.Errorf("%w: Timeout %v is negative", ErrInvalidConfig, c.Timeout)
	case c.MaxBody < 0:
		return fmt.Errorf("%w: MaxBody %d is negative", ErrInvalidConfig, c.MaxBody)
	}
	for i, m := range c.Middleware {
		if m == nil {
			return fmt.Errorf("%w: Middleware[%d] is nil", ErrInvalidConfig, i)
		}
	}
	return nil
}
