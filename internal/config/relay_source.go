package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/redisbridge"
)

// RELAY_SOURCE's values.
const (
	SourcePostgres    = "postgres"     // the app's outbox table (DATABASE_URL, OUTBOX_*)
	SourceRedis       = "redis"        // Redis pub/sub (REDIS_URL, REDIS_CHANNEL_PATTERN): at most once
	SourceRedisStream = "redis-stream" // a Redis stream's consumer group (REDIS_STREAM, …): at least once
	SourceNATS        = "nats"         // core NATS (NATS_URL, NATS_SUBJECT): at most once
	SourceJetStream   = "jetstream"    // a JetStream stream's durable consumer (NATS_STREAM, …): at least once
)

// relaySources are RELAY_SOURCE's values, in the order the error lists them.
var relaySources = []string{SourcePostgres, SourceRedis, SourceRedisStream, SourceNATS, SourceJetStream}

// RelayRedis holds the Redis sources' settings (RELAY_SOURCE=redis or
// redis-stream); the defaults are redisbridge's.
type RelayRedis struct {
	// RedisURL is redis:// or rediss:// (TLS); it may hold the password.
	RedisURL string `env:"REDIS_URL"`
	// RedisChannelPattern (redis) is the PSUBSCRIBE pattern; the event
	// type is what its one "*" matched.
	RedisChannelPattern string `env:"REDIS_CHANNEL_PATTERN"`
	// RedisStream, RedisGroup, RedisConsumer (redis-stream): the stream,
	// the consumer group, and this relay's name in it (empty:
	// FLY_MACHINE_ID, else the hostname).
	RedisStream   string `env:"REDIS_STREAM"`
	RedisGroup    string `env:"REDIS_GROUP"`
	RedisConsumer string `env:"REDIS_CONSUMER"`
	// RedisClaimIdle (redis-stream): entries pending this long at a
	// consumer that died are claimed and published again.
	RedisClaimIdle time.Duration `env:"REDIS_CLAIM_IDLE"`
}

func defaultRelayRedis() RelayRedis {
	return RelayRedis{
		RedisURL:            redisbridge.DefaultURL,
		RedisChannelPattern: redisbridge.DefaultPattern,
		RedisStream:         redisbridge.DefaultStream,
		RedisGroup:          redisbridge.DefaultGroup,
		RedisClaimIdle:      redisbridge.DefaultClaimIdle,
	}
}

// checkSource checks RELAY_SOURCE and its source's variables.
func (c *Relay) checkSource(environ map[string]string) error {
	switch c.Source {
	case SourcePostgres:
		return nil
	case SourceRedis, SourceRedisStream:
		return c.checkRedis(environ)
	case SourceNATS, SourceJetStream:
		n, err := LoadNATS(environ, c.Source, c.Publisher)
		c.NATS = n
		return err
	}
	return &Error{"RELAY_SOURCE", c.Source, "use " + strings.Join(relaySources, ", ") + " (default " + SourcePostgres + ")"}
}

func (c *Relay) checkRedis(environ map[string]string) error {
	if c.RedisConsumer == "" {
		c.RedisConsumer = environ["FLY_MACHINE_ID"]
	}
	if c.RedisConsumer == "" {
		// Resolved here so that the log and the error say the name in use.
		h, err := os.Hostname()
		if err != nil || h == "" {
			return &Error{"REDIS_CONSUMER", "", fmt.Sprintf("unset, no FLY_MACHINE_ID and no hostname (%v): name this relay in its group", err)}
		}
		c.RedisConsumer = h
	}
	if s := c.RedisURL; !strings.HasPrefix(s, "redis://") && !strings.HasPrefix(s, "rediss://") {
		return &Error{"REDIS_URL", redisbridge.RedactURL(s), "use redis://[:password@]host:6379/db, or rediss:// for TLS"}
	}
	// Each source's own variables only: REDIS_CHANNEL_PATTERN means
	// nothing to redis-stream, REDIS_STREAM nothing to redis.
	if c.Source == SourceRedis {
		if redisbridge.CheckPattern(c.RedisChannelPattern) != nil {
			return &Error{"REDIS_CHANNEL_PATTERN", c.RedisChannelPattern, `use one "*" where the event type stands and no other glob character (?, [, \), e.g. events:*`}
		}
	} else {
		switch {
		case c.RedisStream == "":
			return &Error{"REDIS_STREAM", "", "must not be empty"}
		case c.RedisGroup == "":
			return &Error{"REDIS_GROUP", "", "must not be empty"}
		case c.RedisClaimIdle < redisbridge.MinClaimIdle:
			return &Error{"REDIS_CLAIM_IDLE", c.RedisClaimIdle.String(), fmt.Sprintf("must be at least %v (shorter, live relays claim and publish each other's entries in flight), e.g. 30s", redisbridge.MinClaimIdle)}
		}
	}
	if _, err := redisbridge.New(c.RedisConfig(), nil); err != nil {
		var ce *redisbridge.ConfigError
		if !errors.As(err, &ce) {
			return &Error{"REDIS_URL", redisbridge.RedactURL(c.RedisURL), err.Error()}
		}
		v, ok := relayRedisVars[ce.Field]
		if !ok {
			v = "REDIS_URL" // not reached: every field New checks is in relayRedisVars
		}
		return &Error{v, ce.Value, ce.Reason}
	}
	return nil
}

// relayRedisVars names the variable behind each redisbridge.Config field that
// New checks.
var relayRedisVars = map[string]string{
	"Source":         "RELAY_SOURCE",
	"URL":            "REDIS_URL",
	"Pattern":        "REDIS_CHANNEL_PATTERN",
	"Stream":         "REDIS_STREAM",
	"Group":          "REDIS_GROUP",
	"Consumer":       "REDIS_CONSUMER",
	"ClaimIdle":      "REDIS_CLAIM_IDLE",
	"Window":         "PUBLISH_WINDOW",
	"PublishTimeout": "PUBLISH_TIMEOUT",
}

// RedisConfig is the redisbridge.Config these settings describe.
func (c Relay) RedisConfig() redisbridge.Config {
	src := redisbridge.SourcePubSub
	if c.Source == SourceRedisStream {
		src = redisbridge.SourceStream
	}
	return redisbridge.Config{
		Source:         src,
		URL:            c.RedisURL,
		Pattern:        c.RedisChannelPattern,
		Stream:         c.RedisStream,
		Group:          c.RedisGroup,
		Consumer:       c.RedisConsumer,
		ClaimIdle:      c.RedisClaimIdle,
		Window:         c.Window,
		PublishTimeout: c.Timeout,
	}
}
