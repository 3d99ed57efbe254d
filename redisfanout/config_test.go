package redisfanout_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/redisfanout"
)

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	c := redisfanout.Config{}.WithDefaults()
	if c.URL != "redis://127.0.0.1:6379/0" || c.Channel != "events:{type}" || c.Timeout != 5*time.Second || c.PoolSize != 0 {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

func TestConfig_Refused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   redisfanout.Config
		field string
		want  string // in the error
	}{
		{"no {type}", redisfanout.Config{Channel: "events"}, "Channel", "must hold {type}"},
		{"typo in the placeholder", redisfanout.Config{Channel: "events:{Type}"}, "Channel", "must hold {type}"},
		{"another placeholder", redisfanout.Config{Channel: "events:{type}:{aggregate}"}, "Channel", "only placeholder"},
		{"unclosed brace", redisfanout.Config{Channel: "events:{type"}, "Channel", "must hold {type}"},
		{"stray brace", redisfanout.Config{Channel: "{events:{type}"}, "Channel", "only placeholder"},
		{"negative timeout", redisfanout.Config{Timeout: -time.Second}, "Timeout", "must be positive"},
		{"negative pool", redisfanout.Config{PoolSize: -1}, "PoolSize", "must not be negative"},
		{"http URL", redisfanout.Config{URL: "http://:s3cret@cache:6379/0"}, "URL", "use redis://"},
		{"bad port", redisfanout.Config{URL: "redis://:s3cret@cache:port/0"}, "URL", "not a Redis URL"},
		{"bad db", redisfanout.Config{URL: "redis://:s3cret@cache:6379/zero"}, "URL", "not a Redis URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisfanout.New(tc.cfg)
			var ce *redisfanout.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, redisfanout.ErrInvalidConfig) {
				t.Fatalf("New: %v, want a *ConfigError", err)
			}
			if ce.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (field %s), want field %s and %q", err, ce.Field, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestHandler_Channel(t *testing.T) {
	t.Parallel()
	for template, want := range map[string]string{
		"events:{type}":        "events:CardAdded",
		"app1:{type}:live":     "app1:CardAdded:live",
		"{type}":               "CardAdded",
		"{type}/{type}":        "CardAdded/CardAdded",
		"events.{type}.stream": "events.CardAdded.stream",
	} {
		h, err := redisfanout.New(redisfanout.Config{Channel: template})
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Channel("CardAdded"); got != want {
			t.Errorf("%s: channel %q, want %q", template, got, want)
		}
		_ = h.Close()
	}
}
