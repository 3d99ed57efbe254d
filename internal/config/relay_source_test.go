package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/redisbridge"
)

// RELAY_SOURCE=redis and redis-stream need no DATABASE_URL, and take the
// redisbridge defaults; REDIS_CONSUMER falls back to FLY_MACHINE_ID.
func TestLoadRelay_RedisSources(t *testing.T) {
	t.Parallel()
	c, err := LoadRelay(map[string]string{"RELAY_SOURCE": "redis"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.RedisConfig()
	if r.Source != redisbridge.SourcePubSub || r.URL != redisbridge.DefaultURL || r.Pattern != "events:*" || r.Window != c.Window || r.PublishTimeout != c.Timeout {
		t.Fatalf("redis config %+v", r)
	}
	c, err = LoadRelay(map[string]string{"RELAY_SOURCE": "redis-stream", "FLY_MACHINE_ID": "m-42", "REDIS_CLAIM_IDLE": "5s",
		"REDIS_URL": "rediss://:pw@cache:6380/3", "REDIS_STREAM": "orders", "REDIS_GROUP": "g"})
	if err != nil {
		t.Fatal(err)
	}
	r = c.RedisConfig()
	if r.Source != redisbridge.SourceStream || r.Consumer != "m-42" || r.ClaimIdle != 5*time.Second || r.Stream != "orders" || r.Group != "g" {
		t.Fatalf("redis-stream config %+v", r)
	}
	c, err = LoadRelay(map[string]string{"RELAY_SOURCE": "redis-stream", "FLY_MACHINE_ID": "m-42", "REDIS_CONSUMER": "mine"})
	if err != nil || c.RedisConsumer != "mine" {
		t.Fatalf("REDIS_CONSUMER over FLY_MACHINE_ID: %q, %v", c.RedisConsumer, err)
	}
	c, err = LoadRelay(map[string]string{"RELAY_SOURCE": "redis-stream"})
	if err != nil || c.RedisConsumer == "" {
		t.Fatalf("REDIS_CONSUMER unset, no FLY_MACHINE_ID: %q, %v; want the hostname", c.RedisConsumer, err)
	}
	if c, err := LoadRelay(map[string]string{"DATABASE_URL": "postgres://h/db"}); err != nil || c.Source != SourcePostgres {
		t.Fatalf("RELAY_SOURCE unset: %q, %v; want postgres", c.Source, err)
	}
}

// Each bad value is a *Error naming its variable, with the password hidden.
func TestLoadRelay_BadSourceSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"RELAY_SOURCE": "kafka"}, "RELAY_SOURCE"},
		{map[string]string{"RELAY_SOURCE": "postgres"}, "DATABASE_URL"},
		{map[string]string{}, "DATABASE_URL"},
		{map[string]string{"RELAY_SOURCE": "redis", "REDIS_URL": "http://:secret@h/"}, "REDIS_URL"},
		{map[string]string{"RELAY_SOURCE": "redis", "REDIS_URL": "redis://:secret@h:port/0"}, "REDIS_URL"},
		{map[string]string{"RELAY_SOURCE": "redis", "REDIS_URL": "redis://:secret@h:6379/notadb"}, "REDIS_URL"},
		{map[string]string{"RELAY_SOURCE": "redis", "REDIS_CHANNEL_PATTERN": "events:*:*"}, "REDIS_CHANNEL_PATTERN"},
		{map[string]string{"RELAY_SOURCE": "redis", "REDIS_CHANNEL_PATTERN": "events"}, "REDIS_CHANNEL_PATTERN"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_CLAIM_IDLE": "0s"}, "REDIS_CLAIM_IDLE"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_CLAIM_IDLE": "soon"}, "REDIS_CLAIM_IDLE"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_CLAIM_IDLE": "1ms"}, "REDIS_CLAIM_IDLE"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_CLAIM_IDLE": "999ms"}, "REDIS_CLAIM_IDLE"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_STREAM": strings.Repeat("s", 214)}, "REDIS_STREAM"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_STREAM": "ev\x00ents"}, "REDIS_STREAM"},
		{map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_STREAM": "ev\u0085ents"}, "REDIS_STREAM"},
		{map[string]string{"RELAY_SOURCE": "redis", "PUBLISH_WINDOW": "0"}, "PUBLISH_WINDOW"},
	} {
		_, err := LoadRelay(tc.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tc.want {
			t.Errorf("%v: got %v, want a *config.Error naming %s", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows the password: %v", tc.env, err)
		}
	}
}

// Each Redis source's variables are checked for that source only, and the
// limits themselves are accepted.
func TestLoadRelay_RedisChecksOnlyItsSource(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"RELAY_SOURCE": "redis-stream", "REDIS_CHANNEL_PATTERN": "events"},
		{"RELAY_SOURCE": "redis", "REDIS_STREAM": "a\tb", "REDIS_CLAIM_IDLE": "1ms"},
		{"RELAY_SOURCE": "redis-stream", "REDIS_CLAIM_IDLE": "1s", "REDIS_STREAM": strings.Repeat("s", 213)},
	} {
		if _, err := LoadRelay(env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}
