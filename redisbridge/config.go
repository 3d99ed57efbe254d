package redisbridge

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// Source is where a Bridge reads.
type Source string

// The sources; the values are RELAY_SOURCE's.
const (
	SourcePubSub Source = "redis"        // PSUBSCRIBE: at most once
	SourceStream Source = "redis-stream" // XREADGROUP, XACK after the confirm: at least once
)

// Defaults of Config.
const (
	DefaultURL            = "redis://127.0.0.1:6379/0"
	DefaultPattern        = "events:*"
	DefaultStream         = "events"
	DefaultGroup          = "eventfleet-relay"
	DefaultClaimIdle      = 30 * time.Second
	DefaultWindow         = 256
	DefaultPublishTimeout = 30 * time.Second
)

// RejectedSuffix makes the stream where rejected entries are kept:
// "<stream>:rejected".
const RejectedSuffix = ":rejected"

// Config configures a Bridge. The zero value relays pub/sub from the local
// Redis.
type Config struct {
	// Source is SourcePubSub or SourceStream. Defaults to SourcePubSub, the
	// original design's.
	Source Source
	// URL is redis:// or rediss:// (TLS); it may hold the password.
	// Defaults to DefaultURL (redis://127.0.0.1:6379/0).
	URL string
	// Pattern (SourcePubSub) is the PSUBSCRIBE pattern: one "*", the event
	// type, and no other glob character. Defaults to DefaultPattern
	// ("events:*").
	Pattern string
	// Stream (SourceStream) is the stream key. Defaults to DefaultStream
	// ("events").
	Stream string
	// Group (SourceStream) is the consumer group, created (with the stream,
	// MKSTREAM) from the stream's start if missing, so that entries added
	// before the first relay ran are relayed too. Defaults to DefaultGroup
	// ("eventfleet-relay").
	Group string
	// Consumer (SourceStream) is this bridge's name in the group: each
	// bridge of a group needs its own. Defaults to the hostname.
	Consumer string
	// ClaimIdle (SourceStream): entries pending this long at another
	// consumer (one that died) are claimed and published again; a live
	// bridge renews its own entries in flight every third of it. Defaults
	// to DefaultClaimIdle (30s).
	ClaimIdle time.Duration
	// Window is the most messages taken and not yet settled. Defaults to
	// DefaultWindow (256, PUBLISH_WINDOW's default).
	Window int
	// PublishTimeout bounds one publish attempt (its confirm included);
	// a message whose attempt failed is tried again after Backoff.
	// Defaults to DefaultPublishTimeout (30s).
	PublishTimeout time.Duration
	// Backoff is the schedule between reconnects and between publish
	// attempts of one message. Defaults to retry.Backoff's (100ms to 30s).
	Backoff retry.Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records eventfleet_bridge_* by source. Defaults to nil: none.
	Metrics *metrics.Metrics
}

// withDefaults fills the defaults, checks cfg and returns go-redis's
// options for its URL.
func (c Config) withDefaults() (Config, *redis.Options, error) {
	if c.Source == "" {
		c.Source = SourcePubSub
	}
	if c.Source != SourcePubSub && c.Source != SourceStream {
		return c, nil, fmt.Errorf("%w: Source %q: use %q or %q", ErrInvalidConfig, c.Source, SourcePubSub, SourceStream)
	}
	for _, d := range []struct {
		v   *string
		def string
	}{{&c.URL, DefaultURL}, {&c.Pattern, DefaultPattern}, {&c.Stream, DefaultStream}, {&c.Group, DefaultGroup}} {
		if *d.v == "" {
			*d.v = d.def
		}
	}
	opt, err := parseURL(c.URL)
	if err != nil {
		return c, nil, err
	}
	if err := CheckPattern(c.Pattern); err != nil {
		return c, nil, err
	}
	if c.Consumer == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return c, nil, fmt.Errorf("%w: Consumer is empty and the hostname unknown (%v): name this bridge", ErrInvalidConfig, err)
		}
		c.Consumer = h
	}
	switch {
	case c.ClaimIdle < 0:
		return c, nil, fmt.Errorf("%w: ClaimIdle %v must not be negative", ErrInvalidConfig, c.ClaimIdle)
	case c.ClaimIdle == 0:
		c.ClaimIdle = DefaultClaimIdle
	}
	switch {
	case c.Window < 0:
		return c, nil, fmt.Errorf("%w: Window %d must not be negative", ErrInvalidConfig, c.Window)
	case c.Window == 0:
		c.Window = DefaultWindow
	}
	switch {
	case c.PublishTimeout < 0:
		return c, nil, fmt.Errorf("%w: PublishTimeout %v must not be negative", ErrInvalidConfig, c.PublishTimeout)
	case c.PublishTimeout == 0:
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, opt, nil
}

// CheckPattern reports whether p is a PSUBSCRIBE pattern the bridge can
// take an event type from: exactly one "*" and no other glob character
// (?, [, \), so that what "*" matched is unambiguous.
func CheckPattern(p string) error {
	if strings.Count(p, "*") != 1 || strings.ContainsAny(p, `?[]\`) {
		return fmt.Errorf("%w: pattern %q: use one \"*\" for the event type and no other glob character (?, [, \\), e.g. events:*", ErrInvalidConfig, p)
	}
	return nil
}

// typeOf is what the pattern's "*" matched in channel.
func typeOf(pattern, channel string) string {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	if len(channel) < len(prefix)+len(suffix) {
		return ""
	}
	return channel[len(prefix) : len(channel)-len(suffix)]
}
