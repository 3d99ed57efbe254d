package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/outbox"
)

// relayCommand is "publisher relay [migrate]".
func relayCommand(ctx context.Context, cmd command, environ map[string]string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadRelay(environ)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	if cmd.sub != "" && cfg.Source != config.SourcePostgres {
		return fmt.Errorf("%w: relay %s works on the outbox table: RELAY_SOURCE=%s has none", errBadArgs, cmd.sub, cfg.Source)
	}
	switch {
	case cmd.sub == "migrate":
		return relayMigrate(ctx, cfg, stdout)
	case strings.HasPrefix(cmd.sub, "set-aside "):
		return setAside(ctx, cfg, strings.TrimPrefix(cmd.sub, "set-aside "), cmd.rows, stdout)
	}
	m := metrics.New()
	p, err := amqp.NewPublisher(cfg.PublisherConfig(log, m))
	if err != nil {
		return err
	}
	var src relaySource
	switch cfg.Source {
	case config.SourceRedis, config.SourceRedisStream:
		src, err = redisSource(cfg, p, m, log)
	case config.SourceNATS, config.SourceJetStream:
		src, err = natsSource(cfg, p, m, log)
	default:
		src, err = outboxSource(cfg, p, m, log)
	}
	if err != nil {
		return err
	}
	return runRelay(ctx, cfg, p, src, m, log)
}

// relaySource is what `publisher relay` runs: the outbox relay, or a
// bridge from another system. Each is started once and stopped once.
type relaySource struct {
	// Start, Stop and Done are the source's lifecycle: Start returns once
	// it runs; Stop(ctx) lets the messages taken be settled until ctx ends;
	// Done closes when it stopped (by Stop, or on a fatal error).
	Start func(context.Context) error
	Stop  func(context.Context) error
	Done  func() <-chan struct{}
	// Err is why it stopped by itself; nil if unknown. Optional.
	Err func() error
	// Ready is nil when the relay is ready (/readyz), else why not; asked
	// only while not shutting down.
	Ready func() error
	// Started and Stopped are the log attributes of "relaying" and
	// "stopped".
	Started []any
	Stopped func() []any
}

// outboxSource is RELAY_SOURCE=postgres: the app's outbox table.
func outboxSource(cfg config.Relay, p *amqp.Publisher, m *metrics.Metrics, log *slog.Logger) (relaySource, error) {
	ocfg := cfg.OutboxConfig()
	ocfg.Logger = log
	ocfg.Metrics = m
	r, err := outbox.New(ocfg, p)
	if err != nil {
		return relaySource{}, err
	}
	return relaySource{
		Start: r.Start, Stop: r.Stop, Done: r.Done,
		Ready: func() error {
			switch {
			case r.Stats().Leader && !p.Connected():
				return brokerNotConnected(p)
			case !r.Stats().Leader && r.LastError() != nil:
				return fmt.Errorf("database: %w", r.LastError())
			}
			return nil
		},
		Started: []any{"table", tableOf(ocfg), "format", cfg.Format, "database", config.RedactDSN(cfg.DatabaseURL)},
		Stopped: func() []any {
			s := r.Stats()
			return []any{"published", s.Published, "set_aside", s.SetAside}
		},
	}, nil
}

// brokerNotConnected is /readyz's answer while the publisher has no broker.
func brokerNotConnected(p *amqp.Publisher) error {
	if last := p.LastError(); last != nil {
		return fmt.Errorf("broker not connected: %w", last)
	}
	return errors.New("broker not connected")
}

// setAside is "publisher relay set-aside list|retry|discard".
func setAside(ctx context.Context, cfg config.Relay, action string, rows []string, stdout io.Writer) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ocfg := cfg.OutboxConfig()
	table := tableOf(ocfg)
	switch action {
	case "list":
		list, err := outbox.ListSetAside(cctx, conn, table)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, r := range list {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case "retry":
		n, err := outbox.RetrySetAside(cctx, conn, table, rows)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released %d row(s)%s: the relay tries them again\n", n, ofNamed(rows))
	case "discard":
		n, err := outbox.DiscardSetAside(cctx, conn, table, ocfg.Format, rows)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "discarded %d row(s)%s: settled without publishing\n", n, ofNamed(rows))
	}
	return nil
}

// ofNamed says how many rows were named, when some were: a named row that
// is not set aside is not counted, and the operator should see that.
func ofNamed(rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	return fmt.Sprintf(" of %d named", len(rows))
}

// tableOf is the table a relay with cfg works on.
func tableOf(cfg outbox.Config) string {
	if cfg.Table != "" {
		return cfg.Table
	}
	if cfg.Format == outbox.FormatEventStore {
		return "event_store"
	}
	return outbox.DefaultTable
}

// relayMigrate creates the outbox table (eventfleet format) or the side
// table (event_store), and says what it did.
func relayMigrate(ctx context.Context, cfg config.Relay, stdout io.Writer) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ocfg := cfg.OutboxConfig()
	table := tableOf(ocfg)
	if err := outbox.Migrate(cctx, conn, table, ocfg.Format); err != nil {
		return err
	}
	if ocfg.Format == outbox.FormatEventStore {
		trigger, err := outbox.NotifyTriggerSQL(table)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s_set_aside; %s itself is left as it is.\n"+
			"To wake the relay at once on every insert (else it polls every OUTBOX_POLL_INTERVAL), run:\n\n%s", table, table, trigger)
		return nil
	}
	fmt.Fprintf(stdout, "outbox %s ready (table, insert trigger, %s_set_aside)\n", table, table)
	return nil
}

// runRelay relays until ctx ends (a signal) or the source or its publisher
// stops on a fatal error, then drains: what the source took is published
// and settled, then the publisher stops.
func runRelay(ctx context.Context, cfg config.Relay, p *amqp.Publisher, src relaySource, m *metrics.Metrics, log *slog.Logger) error {
	ready := func() error {
		if ctx.Err() != nil {
			return errors.New("shutting down")
		}
		return src.Ready()
	}
	if cfg.MetricsAddr != config.MetricsOff {
		stopAdmin, err := admin.Serve(admin.Config{
			Addr:     cfg.MetricsAddr,
			Fallback: cfg.MetricsAddrDefault,
			Identity: admin.NewIdentity(admin.RoleRelay, cfg.App()),
			Metrics:  m,
			Ready:    ready,
			Broker:   p.Node,
			Logger:   log,
		})
		if err != nil {
			return err
		}
		defer stopAdmin()
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	if err := src.Start(ctx); err != nil {
		return err
	}
	log.Info("relaying", append(append([]any{"source", cfg.Source}, src.Started...),
		"broker", amqp.RedactURL(cfg.AMQPURL), "exchange", cfg.Exchange)...)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case <-src.Done():
		runErr = errors.New("relay stopped")
		if src.Err != nil && src.Err() != nil {
			runErr = fmt.Errorf("relay stopped: %w", src.Err())
		}
	case <-p.Done():
		runErr = publisherStopped(p)
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	relayErr := src.Stop(drainCtx)
	stopErr := p.Stop(drainCtx)
	switch {
	case runErr != nil:
		return runErr
	case relayErr != nil || stopErr != nil:
		return fmt.Errorf("%w (%v): %w", errShutdownTimeout, cfg.ShutdownTimeout, errors.Join(relayErr, stopErr))
	}
	log.Info("stopped", src.Stopped()...)
	return nil
}
