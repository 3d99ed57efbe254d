package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/natsbridge"
)

func TestLoadNATS_Defaults(t *testing.T) {
	t.Parallel()
	p, err := LoadPublisher(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadNATS(map[string]string{}, "jetstream", p)
	if err != nil {
		t.Fatal(err)
	}
	b := c.BridgeConfig()
	if b.Mode != natsbridge.ModeJetStream || b.URL != "nats://127.0.0.1:4222" || b.Subject != "events.*" || b.Stream != "EVENTS" ||
		b.Consumer != "eventfleet-relay" || b.AckWait != 30*time.Second || b.PublishTimeout != p.Timeout || b.Window != p.Window {
		t.Fatalf("bridge config %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadNATS_Refused: every refused value names its variable, and a
// URL's password never shows.
func TestLoadNATS_Refused(t *testing.T) {
	t.Parallel()
	p, err := LoadPublisher(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "relay.creds")
	for _, tc := range []struct {
		source  string
		env     map[string]string
		name    string
		mention string
	}{
		{"kafka", nil, "RELAY_SOURCE", "jetstream"},
		{"nats", map[string]string{"NATS_URL": "http://relay:s3cret@h:4222"}, "NATS_URL", "nats://"},
		{"nats", map[string]string{"NATS_URL": "nats://relay:s3cret@h:4222/x@y"}, "NATS_URL", "percent-encode"},
		{"nats", map[string]string{"NATS_SUBJECT": "events"}, "NATS_SUBJECT", "wildcard"},
		{"nats", map[string]string{"NATS_SUBJECT": "events.Card*"}, "NATS_SUBJECT", "whole token"},
		{"nats", map[string]string{"NATS_SUBJECT": ">"}, "NATS_SUBJECT", "literal first token"},
		{"jetstream", map[string]string{"NATS_STREAM": "my.events"}, "NATS_STREAM", "'.'"},
		{"jetstream", map[string]string{"NATS_CONSUMER": "relay>"}, "NATS_CONSUMER", "'>'"},
		{"jetstream", map[string]string{"NATS_ACK_WAIT": "soon"}, "NATS_ACK_WAIT", "duration"},
		{"jetstream", map[string]string{"NATS_ACK_WAIT": "0s"}, "NATS_ACK_WAIT", "positive"},
		{"jetstream", map[string]string{"NATS_ACK_WAIT": "5s"}, "NATS_ACK_WAIT", "PUBLISH_TIMEOUT (10s)"},
		{"nats", map[string]string{"NATS_CREDS_FILE": missing}, "NATS_CREDS_FILE", "cannot be read"},
	} {
		t.Run(tc.name+"="+tc.env[tc.name], func(t *testing.T) {
			_, err := LoadNATS(tc.env, tc.source, p)
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != tc.name || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, tc.name, tc.mention)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the password shows: %v", err)
			}
		})
	}
}

// TestLoadNATS_AckWaitAgainstPublishTimeout: NATS_ACK_WAIT is checked
// against the PUBLISH_TIMEOUT in force, for jetstream only (core NATS has
// no acks).
func TestLoadNATS_AckWaitAgainstPublishTimeout(t *testing.T) {
	t.Parallel()
	p, err := LoadPublisher(map[string]string{"PUBLISH_TIMEOUT": "45s"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadNATS(map[string]string{}, "jetstream", p)
	var ce *Error
	if !errors.As(err, &ce) || ce.Var != "NATS_ACK_WAIT" || !strings.Contains(err.Error(), "PUBLISH_TIMEOUT (45s)") {
		t.Fatalf("default NATS_ACK_WAIT with PUBLISH_TIMEOUT=45s: %v", err)
	}
	if _, err := LoadNATS(map[string]string{"NATS_ACK_WAIT": "1m"}, "jetstream", p); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNATS(map[string]string{}, "nats", p); err != nil {
		t.Fatalf("core NATS: %v", err)
	}
	// Core NATS has no acks: NATS_ACK_WAIT=0 is no mistake there.
	if _, err := LoadNATS(map[string]string{"NATS_ACK_WAIT": "0s"}, "nats", p); err != nil {
		t.Fatalf("core NATS with NATS_ACK_WAIT=0s: %v", err)
	}
}
