package outbox

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
)

// Defaults of Config.
const (
	DefaultBatch          = 2000
	DefaultPollInterval   = time.Second
	DefaultTakeover       = time.Second
	DefaultMaxAttempts    = 10
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultPublishTimeout = 30 * time.Second
)

// Config configures a Relay. Only DatabaseURL is required.
type Config struct {
	// DatabaseURL is a PostgreSQL URL or keyword/value DSN.
	DatabaseURL string
	// Table is the outbox table, "name" or "schema.name". Defaults to
	// DefaultTable for FormatEventfleet, "event_store" for FormatEventStore.
	Table string
	// Format is the table's layout. Defaults to FormatEventfleet.
	Format Format
	// Batch is the most rows one scan takes. Defaults to DefaultBatch (2000).
	Batch int
	// PollInterval: the table is scanned at least this often without a
	// notification. Defaults to DefaultPollInterval (1s).
	PollInterval time.Duration
	// Takeover is how often a standby relay tries to become the one that
	// publishes. Defaults to DefaultTakeover (1s).
	Takeover time.Duration
	// MaxAttempts: a row the broker refused this many times is set aside.
	// Defaults to DefaultMaxAttempts (10).
	MaxAttempts int
	// Retention (FormatEventStore): processed rows older than this are
	// deleted; 0 keeps them. Defaults to DefaultRetention (7 days); set
	// KeepProcessed to keep them forever.
	Retention time.Duration
	// KeepProcessed turns pruning off (FormatEventStore).
	KeepProcessed bool
	// PublishTimeout bounds one batch of publishes (their confirms included).
	// Defaults to DefaultPublishTimeout (30s).
	PublishTimeout time.Duration
	// Backoff is the reconnect schedule, and the pause after a scan whose
	// publishes failed. Defaults to retry.Backoff's (100ms doubling to 30s).
	Backoff retry.Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records rows published and set aside, leadership and the
	// table's backlog. Defaults to nil: no metrics.
	Metrics *metrics.Metrics
}

func (c Config) withDefaults() (Config, table, format, error) {
	f, err := c.Format.impl()
	if err != nil {
		return c, table{}, nil, err
	}
	if c.Format == "" {
		c.Format = FormatEventfleet
	}
	if c.DatabaseURL == "" {
		return c, table{}, nil, fmt.Errorf("%w: DatabaseURL is required", ErrInvalidConfig)
	}
	if _, err := pgx.ParseConfig(c.DatabaseURL); err != nil {
		// pgx's error may quote the URL; say only what is wrong.
		return c, table{}, nil, fmt.Errorf("%w: DatabaseURL is not a PostgreSQL URL or DSN", ErrInvalidConfig)
	}
	if c.Table == "" {
		c.Table = DefaultTable
		if c.Format == FormatEventStore {
			c.Table = "event_store"
		}
	}
	t, err := parseTable(c.Table)
	if err != nil {
		return c, table{}, nil, err
	}
	for _, d := range []struct {
		v   *int
		def int
		n   string
	}{{&c.Batch, DefaultBatch, "Batch"}, {&c.MaxAttempts, DefaultMaxAttempts, "MaxAttempts"}} {
		if *d.v < 0 {
			return c, t, nil, fmt.Errorf("%w: %s %d must not be negative", ErrInvalidConfig, d.n, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
		n   string
	}{{&c.PollInterval, DefaultPollInterval, "PollInterval"}, {&c.Takeover, DefaultTakeover, "Takeover"},
		{&c.PublishTimeout, DefaultPublishTimeout, "PublishTimeout"}, {&c.Retention, DefaultRetention, "Retention"}} {
		if *d.v < 0 {
			return c, t, nil, fmt.Errorf("%w: %s %v must not be negative", ErrInvalidConfig, d.n, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, t, f, nil
}
