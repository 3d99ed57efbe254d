package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// DefaultMaxEvents is the most events one request may carry.
	DefaultMaxEvents = 500
	// DefaultMaxDepth is the deepest nesting of an event (the event object
	// is level 1): far beyond any real document, far below what makes
	// decoding costly.
	DefaultMaxDepth = 64
	// DefaultMaxInFlight is the most events admitted and awaiting confirms
	// across all requests: 20 requests of DefaultMaxEvents. A healthy broker
	// never reaches it (the benchmark of 64 clients posting 100 events each
	// keeps 6,400 in flight and is confirmed at ~12,000 events/s, so 10,000
	// drain in about a second); a stalled one stops taking work there
	// instead of at every request's Timeout.
	DefaultMaxInFlight = 20 * DefaultMaxEvents
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
	// Auth is how callers are authenticated: AuthKeys, the zero value,
	// requires a key of Keys; AuthNone accepts anyone.
	Auth Auth
	// Keys are the API keys callers send as "Authorization: Bearer <key>"
	// (see ParseKeys). Required, with at least one key, under AuthKeys.
	Keys *Keys
	// Timeout bounds the wait for the confirms of one request; what is not
	// confirmed by then is answered 503. Defaults to DefaultTimeout (10s).
	Timeout time.Duration
	// MaxBody is the largest request body in bytes; a larger one is
	// answered 413. Defaults to DefaultMaxBody (1 MiB).
	MaxBody int64
	// MaxEvents is the most events one request may carry; more are
	// answered 413, counted before the body is decoded. It also bounds the
	// answers, which list the ids. Defaults to DefaultMaxEvents (500).
	MaxEvents int
	// MaxDepth is the deepest nesting allowed in an event, counted from the
	// event object, which is level 1 ({"type":"A","data":{"k":[1]}} is 3);
	// deeper is answered 400. Defaults to DefaultMaxDepth (64).
	MaxDepth int
	// MaxInFlight is the most events admitted across all requests and not
	// yet answered by PublishBatch. A request whose events do not fit is
	// answered 429 at once, with Retry-After: no request waits for room. At
	// least MaxEvents. Defaults to DefaultMaxInFlight (10,000), or to
	// MaxEvents when that is larger.
	MaxInFlight int
	// Rate is the events per second each caller may publish, refilling a
	// token bucket of Burst events; a request over it is answered 429 with
	// Retry-After, and publishes nothing. 0 means no rate limit, the
	// default.
	Rate float64
	// Burst is the size of each caller's token bucket, the most events a
	// caller may send at once after a pause. At least MaxEvents, so that
	// every request allowed in size can pass. Defaults to the larger of
	// MaxEvents and Rate rounded up. Unused without Rate.
	Burst int
	// Logger gets a line per 503 at WARN and the steps of a request at
	// DEBUG. Defaults to slog.Default().
	Logger *slog.Logger
	// AccessLog gets one INFO line per request, "request", whatever its
	// answer (see Handler). Defaults to Logger.
	AccessLog *slog.Logger
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
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(DefaultMaxInFlight, c.MaxEvents)
	}
	if c.Burst == 0 && c.Rate > 0 && !math.IsInf(c.Rate, 0) {
		c.Burst = int(min(max(float64(c.MaxEvents), math.Ceil(c.Rate)), math.MaxInt32))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AccessLog == nil {
		c.AccessLog = c.Logger
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
	case c.MaxEvents < 0:
		return fmt.Errorf("%w: MaxEvents %d is negative", ErrInvalidConfig, c.MaxEvents)
	case c.MaxDepth < 0:
		return fmt.Errorf("%w: MaxDepth %d is negative", ErrInvalidConfig, c.MaxDepth)
	case c.MaxInFlight < c.MaxEvents:
		return fmt.Errorf("%w: MaxInFlight %d is below MaxEvents %d: a request of MaxEvents events could never be admitted; raise MaxInFlight",
			ErrInvalidConfig, c.MaxInFlight, c.MaxEvents)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("%w: Rate %v is not a number of events per second ≥ 0 (0 turns the rate limit off)", ErrInvalidConfig, c.Rate)
	case c.Burst < 0:
		return fmt.Errorf("%w: Burst %d is negative", ErrInvalidConfig, c.Burst)
	case c.Rate > 0 && c.Burst < c.MaxEvents:
		return fmt.Errorf("%w: Burst %d is below MaxEvents %d: a request of MaxEvents events could never pass the rate limit; raise Burst or leave it 0",
			ErrInvalidConfig, c.Burst, c.MaxEvents)
	}
	for i, m := range c.Middleware {
		if m == nil {
			return fmt.Errorf("%w: Middleware[%d] is nil", ErrInvalidConfig, i)
		}
	}
	switch {
	case c.Auth != AuthKeys && c.Auth != AuthNone:
		return fmt.Errorf("%w: Auth %v is neither AuthKeys nor AuthNone", ErrInvalidConfig, c.Auth)
	case c.Auth == AuthKeys && c.Keys.Len() == 0:
		return fmt.Errorf("%w: Auth is AuthKeys but Keys holds no key: make one with `publisher key new CALLER`, or use AuthNone to accept anyone", ErrInvalidConfig)
	}
	return nil
}
