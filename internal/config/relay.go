package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/internal/pgdsn"
	"github.com/eventfleet/eventfleet/internal/pgident"
	"github.com/eventfleet/eventfleet/outbox"
)

// Relay holds `publisher relay`'s settings: the publisher's broker settings
// (AMQP_URL, EXCHANGE, PUBLISH_WINDOW, PUBLISH_TIMEOUT per wave of rows, …),
// the source's (RELAY_SOURCE) and the outbox's.
type Relay struct {
	Publisher
	// Source is RELAY_SOURCE: where the relay reads (SourcePostgres, the
	// default, or a bridge's source).
	Source string `env:"RELAY_SOURCE"`
	RelayRedis
	// NATS holds the NATS sources' settings (LoadNATS reads them).
	NATS NATS `env:"-"`
	// DatabaseURL is the app's PostgreSQL (URL or keyword/value DSN); it
	// holds the password. Required for SourcePostgres.
	DatabaseURL string `env:"DATABASE_URL"`
	// Table is the outbox table; empty means the format's own default
	// (outbox.DefaultTable, or event_store).
	Table string `env:"OUTBOX_TABLE"`
	// Format is outbox.FormatEventfleet or outbox.FormatEventStore.
	Format string `env:"OUTBOX_FORMAT"`
	// Batch, PollInterval, Takeover, MaxAttempts and Retention default to
	// the outbox package's; Retention 0 keeps processed event_store rows.
	Batch        int           `env:"OUTBOX_BATCH"`
	PollInterval time.Duration `env:"OUTBOX_POLL_INTERVAL"`
	Takeover     time.Duration `env:"OUTBOX_TAKEOVER"`
	MaxAttempts  int           `env:"OUTBOX_MAX_ATTEMPTS"`
	Retention    time.Duration `env:"OUTBOX_RETENTION"`
}

func defaultRelay() Relay {
	return Relay{
		Publisher:    defaultPublisher(),
		Source:       SourcePostgres,
		RelayRedis:   defaultRelayRedis(),
		Format:       string(outbox.FormatEventfleet),
		Batch:        outbox.DefaultBatch,
		PollInterval: outbox.DefaultPollInterval,
		Takeover:     outbox.DefaultTakeover,
		MaxAttempts:  outbox.DefaultMaxAttempts,
		Retention:    outbox.DefaultRetention,
	}
}

// LoadRelay reads and checks the relay's settings from environ.
func LoadRelay(environ map[string]string) (Relay, error) {
	c := defaultRelay()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	p, err := LoadPublisher(environ)
	if err != nil {
		return c, err
	}
	c.Publisher = p
	if err := c.checkSource(environ); err != nil || c.Source != SourcePostgres {
		return c, err
	}
	switch {
	case c.DatabaseURL == "":
		return c, &Error{"DATABASE_URL", "", "required: the app's PostgreSQL, e.g. postgres://user:password@host:5432/app"}
	case c.Format != string(outbox.FormatEventfleet) && c.Format != string(outbox.FormatEventStore):
		return c, &Error{"OUTBOX_FORMAT", c.Format, "use eventfleet (this relay's table, the default) or event_store (the original design's table, used unchanged)"}
	case c.Batch < 1 || c.Batch > 10000:
		return c, &Error{"OUTBOX_BATCH", fmt.Sprint(c.Batch), "must be 1..10000"}
	case c.PollInterval <= 0:
		return c, &Error{"OUTBOX_POLL_INTERVAL", c.PollInterval.String(), "must be positive"}
	case c.Takeover <= 0:
		return c, &Error{"OUTBOX_TAKEOVER", c.Takeover.String(), "must be positive"}
	case c.MaxAttempts < 1:
		return c, &Error{"OUTBOX_MAX_ATTEMPTS", fmt.Sprint(c.MaxAttempts), "must be positive"}
	case c.Retention < 0:
		return c, &Error{"OUTBOX_RETENTION", c.Retention.String(), "must be positive, or 0 to keep processed rows"}
	}
	if _, err := pgx.ParseConfig(c.DatabaseURL); err != nil {
		return c, &Error{"DATABASE_URL", RedactDSN(c.DatabaseURL), "not a PostgreSQL URL (postgres://user:password@host:5432/db) or key=value DSN"}
	}
	if _, err := outbox.New(c.OutboxConfig(), nil); err != nil {
		if errors.Is(err, pgident.ErrInvalidTable) {
			return c, &Error{"OUTBOX_TABLE", c.Table, "use " + pgident.Rule}
		}
		// The checks above cover every variable; this names what they missed.
		return c, fmt.Errorf("relay settings: %w", err)
	}
	return c, nil
}

// OutboxConfig is the outbox.Config these settings describe.
func (c Relay) OutboxConfig() outbox.Config {
	cfg := outbox.Config{
		DatabaseURL:    c.DatabaseURL,
		Table:          c.Table,
		Format:         outbox.Format(c.Format),
		Batch:          c.Batch,
		PollInterval:   c.PollInterval,
		Takeover:       c.Takeover,
		MaxAttempts:    c.MaxAttempts,
		Retention:      c.Retention,
		KeepProcessed:  c.Retention == 0,
		PublishTimeout: c.Timeout,
	}
	return cfg
}

// RedactDSN is a PostgreSQL URL or DSN with its password hidden, for logs
// and errors (pgdsn.Redact).
func RedactDSN(dsn string) string { return pgdsn.Redact(dsn) }
