package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/eventlog"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/tracing"
	"github.com/eventfleet/eventfleet/webhook"
)

// runWorker is "worker run": consume until SIGINT/SIGTERM or a fatal error.
func runWorker(args []string, stdout, stderr io.Writer, environ map[string]string) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "worker run: unexpected argument %q; settings come from the environment (see worker -h)\n", args[0])
		return exitUsage
	}
	cfg, err := config.LoadWorker(environ)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return exitUsage
	}
	// Stdout belongs to HANDLER=log's event lines; logs go to stderr.
	log := cfg.Logger(stderr)

	h, attrs, err := newHandler(cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return exitUsage
	}
	m := metrics.New()
	w, err := amqp.NewWorker(cfg.WorkerConfig(log, m), h)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		if errors.Is(err, amqp.ErrInvalidConfig) {
			return exitUsage
		}
		return exitFatal
	}
	flushTraces, err := tracing.Setup(context.Background(), cfg.Tracing("eventfleet-worker"))
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return exitFatal
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flushTraces(ctx); err != nil {
			log.Warn("could not export the last spans", "err", err)
		}
	}()
	var draining atomic.Bool
	if cfg.MetricsAddr != config.MetricsOff {
		ready := func() error {
			switch {
			case draining.Load():
				return errors.New("shutting down")
			case !w.Consuming():
				return errors.New("not consuming: connecting to the broker")
			}
			return nil
		}
		id := admin.NewIdentity(admin.RoleWorker, cfg.App())
		srv, err := admin.Start(admin.Config{
			Addr:     cfg.MetricsAddr,
			Fallback: cfg.MetricsAddrDefault,
			Identity: id,
			Metrics:  m,
			Ready:    ready,
			Logger:   log,
		})
		if err != nil {
			fmt.Fprintf(stderr, "worker: %v\n", err)
			return exitFatal
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Stop(ctx)
		}()
		// The bound address matters when METRICS_ADDR has port 0 or the
		// default was taken.
		log.Info("serving /metrics, /healthz and /readyz", "addr", srv.Addr(), "instance", id.Instance)
		defer admin.Announce(log, id, srv.Addr())()
	}
	log.Info("starting worker", append([]any{
		"app", cfg.App(),
		"queue", w.Queue(),
		"bindings", w.Bindings(),
		"exchange", cfg.Exchange,
		"broker", amqp.RedactURL(cfg.AMQPURL),
	}, attrs...)...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The worker's lifetime is not tied to ctx: a signal starts the drain
	// below rather than cutting connections.
	if err := w.Start(context.Background()); err != nil {
		log.Error("cannot start worker", "err", err)
		return exitFatal
	}

	select {
	case <-w.Done():
		err := w.Err()
		if err == nil {
			err = errors.New("worker stopped without being asked to")
		}
		log.Error("worker stopped", "err", err)
		return exitFatal
	case <-ctx.Done():
	}

	// From here a second signal kills the process at once (Go's default
	// handling), for an operator who will not wait for the drain.
	stop()
	draining.Store(true)
	log.Info("shutting down: waiting for running handlers", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = w.Stop(sctx)
	st := w.Stats()
	stats := []any{"handled", st.Handled, "retried", st.Retried, "dead_lettered", st.DeadLettered}
	if err != nil {
		// Still exit 0. The handlers that did not finish had their contexts
		// cancelled and their deliveries left unacked; closing the
		// connection hands those back to the broker, which redelivers them
		// to this app's next worker. Nothing is lost (delivery is at least
		// once; handlers deduplicate on the event ID), so this is a normal
		// stop, not a crash for the orchestrator to act on.
		log.Warn("shutdown timeout passed; unfinished events go back to the queue",
			append([]any{"timeout", cfg.ShutdownTimeout.String(), "err", err}, stats...)...)
		return exitOK
	}
	if err := w.Err(); err != nil {
		log.Error("worker stopped", "err", err)
		return exitFatal
	}
	log.Info("worker stopped", stats...)
	return exitOK
}

// runHealth is "worker health": ask the running worker's /readyz, for
// container health checks in an image that has no curl.
func runHealth(args []string, stdout, stderr io.Writer, environ map[string]string) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "worker health: unexpected argument %q\n", args[0])
		return exitUsage
	}
	t, err := config.LoadTelemetry(environ)
	if err != nil {
		fmt.Fprintf(stderr, "worker health: %v\n", err)
		return exitUsage
	}
	if t.MetricsAddr == config.MetricsOff {
		fmt.Fprintln(stderr, "worker health: METRICS_ADDR=off: the worker serves no /readyz to ask")
		return exitUsage
	}
	target := admin.Target{Role: admin.RoleWorker, App: config.App(environ), Addr: t.MetricsAddr, Default: t.MetricsAddr}
	if t.MetricsAddrDefault {
		target.Addr = "" // ask the recorded address of this app's worker
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lines, err := admin.Check(ctx, target)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if err != nil {
		fmt.Fprintf(stderr, "worker health: %v\n", err)
		return exitFatal
	}
	return exitOK
}

// newHandler builds the handler HANDLER names, and log attributes that
// describe it.
func newHandler(cfg config.Worker, stdout io.Writer) (event.Handler, []any, error) {
	switch cfg.Handler {
	case "webhook":
		h, err := webhook.New(cfg.WebhookConfig())
		if err != nil {
			// webhook's errors never quote the URL's password or query.
			return nil, nil, &config.Error{Var: "WEBHOOK_URL", Value: "<hidden>", Reason: err.Error()}
		}
		return h, []any{"handler", cfg.Handler, "webhook", h.URL(), "webhook_timeout", cfg.WebhookTimeout.String()}, nil
	case "log":
		return eventlog.New(stdout), []any{"handler", cfg.Handler}, nil
	default:
		// config.LoadWorker accepts only the cases above.
		return nil, nil, &config.Error{Var: "HANDLER", Value: cfg.Handler, Reason: "use log or webhook"}
	}
}
