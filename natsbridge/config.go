package natsbridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// Mode is how the Bridge reads NATS.
type Mode string

const (
	// ModeCore subscribes to Subject on core NATS: at most once.
	ModeCore Mode = "nats"
	// ModeJetStream reads Stream through the durable pull consumer
	// Consumer: at least once.
	ModeJetStream Mode = "jetstream"
)

// Defaults of Config; the names are the original design's.
const (
	DefaultURL            = "nats://127.0.0.1:4222"
	DefaultSubject        = "events.*"
	DefaultStream         = "EVENTS"
	DefaultConsumer       = "eventfleet-relay"
	DefaultAckWait        = 30 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultPendingMsgs    = 65536
	DefaultPendingBytes   = 16 << 20
	DefaultMaxAttempts    = 10
	DefaultWindowBytes    = 16 << 20
	DefaultName           = "eventfleet-relay"
)

// Publisher is what a Bridge publishes through: *amqp.Publisher.
type Publisher interface {
	// PublishBatch publishes evs and returns nil once all were confirmed,
	// or an *amqp.BatchError saying which were not.
	PublishBatch(ctx context.Context, evs []event.Event) error
}

// Config configures a Bridge. Only Mode is required.
type Config struct {
	// Mode is ModeCore or ModeJetStream. Required: the choice is between
	// at most once and at least once.
	Mode Mode
	// URL is the NATS server, or several separated by commas; credentials
	// may be in it (nats://user:password@host, nats://token@host). It is
	// shown with the password hidden (RedactURL). Defaults to DefaultURL.
	URL string
	// CredsFile is a NATS .creds file (JWT and NKey seed). Defaults to
	// none.
	CredsFile string
	// Subject is the subject pattern read; the event type is the subject
	// without the pattern's literal prefix ("events." for "events.*";
	// "events.>" carries dotted types). It must contain a wildcard.
	// Defaults to DefaultSubject ("events.*").
	Subject string
	// Stream (ModeJetStream) is the stream read. If it does not exist the
	// Bridge creates it, capturing Subject, and logs so; an existing one is
	// used as it is. Defaults to DefaultStream ("EVENTS").
	Stream string
	// Consumer (ModeJetStream) is the durable pull consumer's name; the
	// Bridge creates it, or updates it to this Config. Relays sharing it
	// share the work. Defaults to DefaultConsumer ("eventfleet-relay").
	Consumer string
	// AckWait (ModeJetStream): a message taken and not acked in this time
	// is delivered again. It must exceed PublishTimeout (checked in
	// ModeJetStream only), or a message
	// still being published would be redelivered. Defaults to
	// DefaultAckWait (30s).
	AckWait time.Duration
	// PublishTimeout bounds one batch's publishes, confirms included.
	// Defaults to DefaultPublishTimeout (10s).
	PublishTimeout time.Duration
	// Window bounds the messages taken and not yet settled: the batch
	// size, and the JetStream consumer's MaxAckPending, so that a source
	// faster than the broker is slowed rather than buffered. Defaults to
	// amqp.DefaultWindow (256); use the Publisher's window.
	Window int
	// WindowBytes bounds the bytes of the message bodies taken and not yet
	// settled, with Window bounding their number. ModeJetStream: nats.go's
	// pull byte limit, raised to the server's max_payload if below it (or
	// a message that large could never be pulled). ModeCore: the Bridge's
	// own budget; a message larger than it alone passes when nothing else
	// is held. Defaults to DefaultWindowBytes (16 MiB).
	WindowBytes int
	// PendingMsgs and PendingBytes (ModeCore) bound what nats.go buffers
	// for the subscription while the Bridge is busy; beyond them NATS drops
	// messages (a slow consumer), counted as dropped. Default to
	// DefaultPendingMsgs (65536) and DefaultPendingBytes (16 MiB).
	PendingMsgs  int
	PendingBytes int
	// MaxAttempts (ModeCore): a message the broker did not confirm is
	// tried again, with Backoff, this many times in all, then dropped
	// (counted and logged): core NATS cannot hold it for later. Defaults
	// to DefaultMaxAttempts (10).
	MaxAttempts int
	// ConnectTimeout bounds the first connection in Start. Defaults to
	// DefaultConnectTimeout (5s).
	ConnectTimeout time.Duration
	// Name is the NATS connection's name, shown by the server's monitoring.
	// Defaults to DefaultName.
	Name string
	// Backoff paces retries after a failed batch and is the JetStream Nak
	// delay (by delivery count). Defaults to retry.Backoff's (100ms
	// doubling to 30s).
	Backoff retry.Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records the eventfleet_bridge_* series for source Mode.
	// Defaults to nil: no metrics.
	Metrics *metrics.Metrics
}

// Validate applies the defaults and checks c; the error is a *ConfigError.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
		f   string
	}{{&c.AckWait, DefaultAckWait, "AckWait"}, {&c.PublishTimeout, DefaultPublishTimeout, "PublishTimeout"},
		{&c.ConnectTimeout, DefaultConnectTimeout, "ConnectTimeout"}} {
		if *d.v < 0 {
			return c, &ConfigError{d.f, d.v.String(), "must be positive"}
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, d := range []struct {
		v   *int
		def int
		f   string
	}{{&c.Window, amqp.DefaultWindow, "Window"}, {&c.PendingMsgs, DefaultPendingMsgs, "PendingMsgs"},
		{&c.PendingBytes, DefaultPendingBytes, "PendingBytes"}, {&c.MaxAttempts, DefaultMaxAttempts, "MaxAttempts"},
		{&c.WindowBytes, DefaultWindowBytes, "WindowBytes"}} {
		if *d.v < 0 {
			return c, &ConfigError{d.f, fmt.Sprint(*d.v), "must be positive"}
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Mode != ModeCore && c.Mode != ModeJetStream:
		return c, &ConfigError{"Mode", string(c.Mode), "use nats (core NATS, at most once) or jetstream (a stream, at least once)"}
	case validURL(c.URL) != "":
		return c, &ConfigError{"URL", RedactURL(c.URL), validURL(c.URL)}
	case c.Window > 65535:
		return c, &ConfigError{"Window", fmt.Sprint(c.Window), "must be 1..65535"}
	case c.Mode == ModeJetStream && c.AckWait <= c.PublishTimeout:
		return c, &ConfigError{"AckWait", c.AckWait.String(),
			fmt.Sprintf("must exceed PublishTimeout (%v): a message still being published would be delivered again", c.PublishTimeout)}
	}
	if _, err := typePrefix(c.Subject); err != nil {
		return c, &ConfigError{"Subject", c.Subject, err.Error()}
	}
	if r := validName(c.Stream); r != "" {
		return c, &ConfigError{"Stream", c.Stream, r}
	}
	if r := validName(c.Consumer); r != "" {
		return c, &ConfigError{"Consumer", c.Consumer, r}
	}
	if c.CredsFile != "" {
		if _, err := os.ReadFile(c.CredsFile); err != nil {
			return c, &ConfigError{"CredsFile", c.CredsFile, fmt.Sprintf("cannot be read: %v", err)}
		}
	}
	return c, nil
}

// validName says why s cannot name a stream or consumer, or "". JetStream
// puts names in API subjects, so they hold no subject syntax.
func validName(s string) string {
	if strings.ContainsAny(s, " \t\r\n.*>/\\") {
		return "must not contain whitespace, '.', '*', '>', '/' or '\\'"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "must not contain control characters"
	}
	if len(s) > maxNameLen {
		return fmt.Sprintf("must be at most %d bytes, so that the ids <stream>:<sequence>@<created> stay within an event id's 255", maxNameLen)
	}
	return ""
}

// maxNameLen leaves room in a 255-byte event id for ":", a stream sequence
// of up to 20 digits, "@" and the stream's creation in Unix milliseconds
// (up to 20 digits).
const maxNameLen = 255 - 1 - 20 - 1 - 20
