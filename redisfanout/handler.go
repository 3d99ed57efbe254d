package redisfanout

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// Handler publishes events to Redis channels. It is an event.Handler,
// safe for concurrent use; Close it when the worker has stopped.
type Handler struct {
	cfg Config
	rdb *redis.Client
	m   *metrics.FanoutMetrics
}

var _ event.Handler = (*Handler)(nil)

// New checks cfg (its defaults filled in) and returns a Handler. It does
// not connect: the first PUBLISH does, and a Redis that is down fails the
// events handled meanwhile, which the worker retries.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	opt, err := cfg.options()
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, rdb: redis.NewClient(opt), m: cfg.Metrics.Fanout()}, nil
}

// URL is the Redis URL with its password hidden, for logs.
func (h *Handler) URL() string { return redisbridge.RedactURL(h.cfg.URL) }

// Channel is the channel an event of type typ is published to.
func (h *Handler) Channel(typ string) string {
	return strings.ReplaceAll(h.cfg.Channel, TypeField, typ)
}

// Handle publishes ev's data to its channel and returns once Redis
// answered, or the error (retryable) why not; see the package
// documentation.
func (h *Handler) Handle(ctx context.Context, ev event.Event) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	channel := h.Channel(ev.Type)
	if from, _ := ev.Headers[amqp.HeaderBridgedFrom].(string); from == "redis:"+channel {
		// The relay took this event from this very channel: its
		// subscribers had it already, and publishing it again would feed
		// the relay again, without end.
		h.m.Echo()
		return nil
	}
	n, err := h.rdb.Publish(ctx, channel, []byte(ev.Data)).Result()
	if err != nil {
		// go-redis's errors never hold the password.
		return fmt.Errorf("redisfanout: PUBLISH to %q on %s: %w", channel, h.URL(), err)
	}
	h.m.Published(n)
	return nil
}

// Ping checks that Redis answers with these settings (address, TLS,
// credentials) within Timeout, for a start-up check; Handle does not need it.
func (h *Handler) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisfanout: PING %s: %w", h.URL(), err)
	}
	return nil
}

// Close closes the connections to Redis. Handle fails after it.
func (h *Handler) Close() error { return h.rdb.Close() }
