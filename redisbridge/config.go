package redisbridge

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

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
	DefaultPingInterval   = 5 * time.Second
)

// MinClaimIdle is the shortest ClaimIdle: below it, live bridges of one
// group claim (and publish) each other's entries in flight before a
// renewal lands, for a duplicate on every slow confirm.
const MinClaimIdle = time.Second

// MaxStreamLen is the longest Stream: the event id "<stream>:<entry-id>"
// must fit the fleet's 255-byte id limit, and an entry id is up to 41
// bytes (two 20-digit numbers and a "-").
const MaxStreamLen = 255 - len(":") - 41

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
	// Stream (SourceStream) is the stream key: at most MaxStreamLen (213)
	// bytes, no control characters. Defaults to DefaultStream ("events").
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
	// bridge renews its own entries in flight every third of it. At least
	// MinClaimIdle (1s). Defaults to DefaultClaimIdle (30s).
	ClaimIdle time.Duration
	// Window is the most messages taken and not yet settled. Each body is
	// at most bridge.MaxBody (16 MiB; larger ones are rejected), so the
	// bridge holds at most Window × bridge.MaxBody bytes of bodies.
	// Defaults to DefaultWindow (256, PUBLISH_WINDOW's default).
	Window int
	// PublishTimeout bounds one publish attempt (its confirm included);
	// a message whose attempt failed is tried again after Backoff.
	// Defaults to DefaultPublishTimeout (30s).
	PublishTimeout time.Duration
	// PingInterval (SourcePubSub) is how often the subscribed connection is
	// pinged; a connection that has answered nothing (no pong, no message)
	// for 3 × PingInterval is taken for dead and replaced, counted as a
	// reconnect. Defaults to DefaultPingInterval (5s).
	PingInterval time.Duration
	// Backoff is the schedule between reconnects and between publish
	// attempts of one message. Defaults to retry.Backoff's (100ms to 30s).
	Backoff retry.Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records eventfleet_bridge_* by source. Defaults to nil: none.
	Metrics *metrics.Metrics
}

// withDefaults fills the defaults, checks cfg and returns go-redis's
// options for its URL. Its errors are *ConfigError. Each source's fields
// are checked only for that source.
func (c Config) withDefaults() (Config, *redis.Options, error) {
	if c.Source == "" {
		c.Source = SourcePubSub
	}
	if c.Source != SourcePubSub && c.Source != SourceStream {
		return c, nil, &ConfigError{"Source", string(c.Source), fmt.Sprintf("use %q or %q", SourcePubSub, SourceStream)}
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
	if c.Source == SourcePubSub {
		if err := CheckPattern(c.Pattern); err != nil {
			return c, nil, err
		}
	}
	if c.Source == SourceStream {
		if err := CheckStream(c.Stream); err != nil {
			return c, nil, err
		}
	}
	if c.Consumer == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return c, nil, &ConfigError{"Consumer", "", fmt.Sprintf("empty, and the hostname unknown (%v): name this bridge", err)}
		}
		c.Consumer = h
	}
	switch {
	case c.ClaimIdle == 0:
		c.ClaimIdle = DefaultClaimIdle
	case c.ClaimIdle < MinClaimIdle && (c.Source == SourceStream || c.ClaimIdle < 0):
		return c, nil, &ConfigError{"ClaimIdle", c.ClaimIdle.String(), fmt.Sprintf("must be at least %v: shorter, live bridges claim each other's entries in flight", MinClaimIdle)}
	}
	for _, d := range []struct {
		f   string
		v   *time.Duration
		def time.Duration
	}{{"PublishTimeout", &c.PublishTimeout, DefaultPublishTimeout}, {"PingInterval", &c.PingInterval, DefaultPingInterval}} {
		switch {
		case *d.v < 0:
			return c, nil, &ConfigError{d.f, d.v.String(), "must not be negative"}
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case c.Window < 0:
		return c, nil, &ConfigError{"Window", fmt.Sprint(c.Window), "must not be negative"}
	case c.Window == 0:
		c.Window = DefaultWindow
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, opt, nil
}

// CheckStream reports whether s can be the stream: at most MaxStreamLen
// bytes, so that every event id "<stream>:<entry-id>" is valid, and no
// control characters, as event ids require.
func CheckStream(s string) error {
	if len(s) > MaxStreamLen {
		return &ConfigError{"Stream", s[:32] + "…", fmt.Sprintf("%d bytes: at most %d, so that the event id <stream>:<entry-id> fits 255 bytes", len(s), MaxStreamLen)}
	}
	if !utf8.ValidString(s) {
		return &ConfigError{"Stream", s, "must be UTF-8 (it is part of every event id)"}
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return &ConfigError{"Stream", s, "must not hold control characters (it is part of every event id)"}
		}
	}
	return nil
}

// CheckPattern reports whether p is a PSUBSCRIBE pattern the bridge can
// take an event type from: exactly one "*" and no other glob character
// (?, [, \), so that what "*" matched is unambiguous.
func CheckPattern(p string) error {
	if strings.Count(p, "*") != 1 || strings.ContainsAny(p, `?[]\`) {
		return &ConfigError{"Pattern", p, `use one "*" for the event type and no other glob character (?, [, \), e.g. events:*`}
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
