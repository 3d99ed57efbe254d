package redisbridge_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/redisbridge"
)

func TestNew_RefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  redisbridge.Config
		want string
	}{
		{"source", redisbridge.Config{Source: "kafka"}, `Source "kafka"`},
		{"scheme", redisbridge.Config{URL: "http://u:secret@h/"}, "redis://"},
		{"port", redisbridge.Config{URL: "redis://u:secret@h:port/0"}, "not a Redis URL"},
		{"db", redisbridge.Config{URL: "redis://:secret@h:6379/x"}, "not a Redis URL"},
		{"two stars", redisbridge.Config{Pattern: "events:*:*"}, "one \"*\""},
		{"no star", redisbridge.Config{Pattern: "events:Card"}, "one \"*\""},
		{"question mark", redisbridge.Config{Pattern: "events:?*"}, "no other glob"},
		{"claim idle", redisbridge.Config{ClaimIdle: -1}, "ClaimIdle"},
		{"claim idle below the floor", redisbridge.Config{Source: redisbridge.SourceStream, ClaimIdle: time.Millisecond}, "ClaimIdle"},
		{"long stream", redisbridge.Config{Source: redisbridge.SourceStream, Stream: strings.Repeat("s", redisbridge.MaxStreamLen+1)}, "Stream"},
		{"control char stream", redisbridge.Config{Source: redisbridge.SourceStream, Stream: "ev\nents"}, "control"},
		{"ping interval", redisbridge.Config{PingInterval: -1}, "PingInterval"},
		{"window", redisbridge.Config{Window: -1}, "Window"},
		{"timeout", redisbridge.Config{PublishTimeout: -1}, "PublishTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisbridge.New(tc.cfg, nil)
			var ce *redisbridge.ConfigError
			if !errors.Is(err, redisbridge.ErrInvalidConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a *ConfigError saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// Each source's fields are checked for that source only; the floor and the
// longest stream are accepted.
func TestNew_ChecksOnlyItsSource(t *testing.T) {
	t.Parallel()
	for _, cfg := range []redisbridge.Config{
		{Source: redisbridge.SourceStream, Pattern: "events"},
		{Source: redisbridge.SourcePubSub, Stream: "a\tb"},
		{Source: redisbridge.SourceStream, ClaimIdle: redisbridge.MinClaimIdle, Stream: strings.Repeat("s", redisbridge.MaxStreamLen)},
	} {
		if _, err := redisbridge.New(cfg, nil); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestNew_Defaults(t *testing.T) {
	t.Parallel()
	for _, cfg := range []redisbridge.Config{{}, {Source: redisbridge.SourceStream, URL: "rediss://:pw@redis.internal:6380/2"}} {
		b, err := redisbridge.New(cfg, nil)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if s := b.Stats(); s != (redisbridge.Stats{}) {
			t.Fatalf("fresh bridge stats %+v", s)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://:secret@h:6379/0":      "redis://:xxxxx@h:6379/0",
		"rediss://user:secret@h:6380/1": "rediss://user:xxxxx@h:6380/1",
		"redis://127.0.0.1:6379/0":      "redis://127.0.0.1:6379/0",
		"redis://u:sec ret@h:bad/0":     "<unparsable Redis URL>",
		"h:secret@x":                    "<unparsable Redis URL>",
		"redis://secretpw@h:6379/0":     "redis://xxxxx@h:6379/0", // a password without its ":"
	} {
		if got := redisbridge.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Stop before Start, and twice, is fine; Start after Stop is refused.
func TestBridge_StopBeforeStart(t *testing.T) {
	t.Parallel()
	b, err := redisbridge.New(redisbridge.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	if err := b.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}
