package natsbridge

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTypePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ pattern, prefix, subject, typ string }{
		{"events.*", "events.", "events.CardAddedToLibraryEvent", "CardAddedToLibraryEvent"},
		{"events.>", "events.", "events.billing.InvoicePaid", "billing.InvoicePaid"},
		{"app.events.*", "app.events.", "app.events.X", "X"},
		{"events.*.v1", "events.", "events.Card.v1", "Card.v1"},
	} {
		p, err := typePrefix(tc.pattern)
		if err != nil || p != tc.prefix {
			t.Errorf("%q: prefix %q, %v; want %q", tc.pattern, p, err, tc.prefix)
		}
		if got := subjectType(p, tc.subject); got != tc.typ {
			t.Errorf("%q on %q: type %q, want %q", tc.pattern, tc.subject, got, tc.typ)
		}
	}
	for _, bad := range []string{"", "events", "events.Card*", "events.>.x", "events..*", "events .*", ".events.*", ">", "*", "*.events"} {
		if _, err := typePrefix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                   "nats://127.0.0.1:4222",
		"nats://relay:s3cret@host:4222":           "nats://relay:xxxxx@host:4222",
		"nats://s3cret@host:4222":                 "nats://xxxxx@host:4222",
		"nats://a:p1@h1:4222,nats://b:p2@h2:4222": "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222",
		"relay:s3cret@host:4222":                  "<unparsable NATS URL>",
		"nats://u:p@h/x@y":                        "<unparsable NATS URL>",
		"host:4222":                               "host:4222",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	c, err := Config{Mode: ModeJetStream}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "nats://127.0.0.1:4222" || c.Subject != "events.*" || c.Stream != "EVENTS" || c.Consumer != "eventfleet-relay" ||
		c.AckWait != 30*time.Second || c.PublishTimeout != 10*time.Second || c.Window != 256 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfig_Refused(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "missing.creds")
	ok := filepath.Join(t.TempDir(), "ok.creds")
	if err := os.WriteFile(ok, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Mode: ModeCore, CredsFile: ok}).Validate(); err != nil {
		t.Fatalf("a readable creds file: %v", err)
	}
	if err := (Config{Mode: ModeJetStream, Stream: strings.Repeat("s", 213)}).Validate(); err != nil {
		t.Fatalf("a 213-byte stream name (<stream>:<seq>@<created> fits 255): %v", err)
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no mode", Config{}, "Mode"},
		{"unknown mode", Config{Mode: "kafka"}, "Mode"},
		{"bad url", Config{Mode: ModeCore, URL: "http://h:4222"}, "URL"},
		{"no wildcard", Config{Mode: ModeCore, Subject: "events.Card"}, "Subject"},
		{"dotted stream", Config{Mode: ModeJetStream, Stream: "a.b"}, "Stream"},
		{"wildcard consumer", Config{Mode: ModeJetStream, Consumer: "c*"}, "Consumer"},
		{"control character in stream", Config{Mode: ModeJetStream, Stream: "S\x01"}, "Stream"},
		{"control character in consumer", Config{Mode: ModeJetStream, Consumer: "C\x7f"}, "Consumer"},
		{"stream too long for <stream>:<seq>@<created>", Config{Mode: ModeJetStream, Stream: strings.Repeat("s", 214)}, "Stream"},
		{"negative window bytes", Config{Mode: ModeJetStream, WindowBytes: -1}, "WindowBytes"},
		{"ack wait not above timeout", Config{Mode: ModeJetStream, AckWait: 5 * time.Second, PublishTimeout: 5 * time.Second}, "AckWait"},
		{"negative ack wait", Config{Mode: ModeJetStream, AckWait: -time.Second}, "AckWait"},
		{"window too large", Config{Mode: ModeCore, Window: 70000}, "Window"},
		{"negative pending", Config{Mode: ModeCore, PendingBytes: -1}, "PendingBytes"},
		{"creds missing", Config{Mode: ModeCore, CredsFile: creds}, "CredsFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, want a ConfigError for %s", err, tc.field)
			}
		})
	}
}

func TestConfig_PasswordNeverInError(t *testing.T) {
	t.Parallel()
	err := Config{Mode: ModeCore, URL: "nats://u:s3cret@h:4222/x@y"}.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	if got := err.Error(); got == "" || strings.Contains(got, "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
}
