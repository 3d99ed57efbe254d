package redisfanout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// TypeField is what Config.Channel's template replaces with the event type.
const TypeField = "{type}"

// Defaults of Config.
const (
	// DefaultURL is the local Redis, as the relay's.
	DefaultURL = redisbridge.DefaultURL
	// DefaultChannel gives the original design's channels, events:<EventName>.
	DefaultChannel = "events:" + TypeField
	// DefaultTimeout bounds one PUBLISH.
	DefaultTimeout = 5 * time.Second
)

// ErrInvalidConfig wraps every Config validation error.
var ErrInvalidConfig = errors.New("redisfanout: invalid configuration")

// ConfigError is a Config field that New refuses. It names the field so
// that a caller filling the Config from elsewhere (internal/config, from
// the environment) can name its own setting. errors.Is(err,
// ErrInvalidConfig) holds.
type ConfigError struct {
	Field  string // the Go field: "URL", "Channel", "Timeout", "PoolSize"
	Value  string // the refused value as text; a URL with its password hidden
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Config configures a Handler. The zero value publishes to the local Redis
// on the original design's channels.
type Config struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS;
	// it may hold the password, which no log or error shows. Defaults to
	// DefaultURL (redis://127.0.0.1:6379/0).
	URL string
	// Channel is the channel template: every "{type}" (TypeField) is
	// replaced by the event type. It must hold "{type}" at least once (the
	// body does not carry the type) and no other "{" or "}". Defaults to
	// DefaultChannel ("events:{type}").
	Channel string
	// Timeout bounds one PUBLISH, connecting included; the handler's
	// context (the worker's HANDLER_TIMEOUT) bounds it too. A timeout is a
	// retryable failure. Defaults to DefaultTimeout (5s).
	Timeout time.Duration
	// PoolSize is the most connections to Redis, one per concurrent
	// PUBLISH; set it to at least the worker's concurrency. Defaults to 0:
	// go-redis's, 10 per GOMAXPROCS.
	PoolSize int
	// Metrics records eventfleet_redis_fanout_*. Defaults to nil: none.
	Metrics *metrics.Metrics
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports the first field New refuses, as a *ConfigError. It
// checks c as it is, a zero field included: call it on c.WithDefaults(),
// as New does.
func (c Config) Validate() error {
	_, err := c.options()
	return err
}

// options checks c and returns go-redis's options for it.
func (c Config) options() (*redis.Options, error) {
	if err := CheckChannel(c.Channel); err != nil {
		return nil, &ConfigError{"Channel", c.Channel, err.Error()}
	}
	switch {
	case c.Timeout <= 0:
		return nil, &ConfigError{"Timeout", c.Timeout.String(), "must be positive, e.g. 5s"}
	case c.PoolSize < 0:
		return nil, &ConfigError{"PoolSize", fmt.Sprint(c.PoolSize), "must not be negative (0: go-redis's default)"}
	}
	const usage = "use redis://[:password@]host:6379/db, or rediss:// for TLS"
	scheme, _, _ := strings.Cut(c.URL, "://")
	if scheme != "redis" && scheme != "rediss" {
		return nil, &ConfigError{"URL", redisbridge.RedactURL(c.URL), usage}
	}
	// redis.ParseURL's errors may quote the URL, password and all: not
	// passed on.
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, &ConfigError{"URL", redisbridge.RedactURL(c.URL), "not a Redis URL: " + usage}
	}
	// The context's deadline (Timeout) bounds the socket's reads and
	// writes too; without this, go-redis waits ReadTimeout (3s) per
	// attempt whatever the context says.
	opt.ContextTimeoutEnabled = true
	opt.ReadTimeout, opt.WriteTimeout = c.Timeout, c.Timeout
	if c.PoolSize > 0 {
		opt.PoolSize = c.PoolSize
	}
	return opt, nil
}

// CheckChannel reports whether template is a usable channel template: it
// holds "{type}" and no other brace, so that a typo such as "{Type}" or
// "events:{type" is refused rather than published to literally.
func CheckChannel(template string) error {
	if !strings.Contains(template, TypeField) {
		return errors.New(`must hold {type}, which is replaced by the event type (the body does not carry it), e.g. events:{type}`)
	}
	if strings.ContainsAny(strings.ReplaceAll(template, TypeField, ""), "{}") {
		return errors.New(`{type} is the only placeholder; no other "{" or "}", e.g. events:{type}`)
	}
	return nil
}
