package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/eventfleet/eventfleet/redisbridge"
	"github.com/eventfleet/eventfleet/redisfanout"
	"github.com/eventfleet/eventfleet/tracing"
	"github.com/eventfleet/eventfleet/webhook"
)

// runWorker is "worker run": consume until SIGINT/SIGTERM or a fatal error.
func runWorker(args []string, stdout, stderr io.Writer, environ map[string]string) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "worker run: unexpected argument %q; settings come from the environment (see worker -h)\n", args[0])
		return exitUsage
	}
	p, code := newProcess(stdout, stderr, environ)
	if p == nil {
		return code
	}
	flushTraces, err := tracing.Setup(context.Background(), p.cfg.Tracing("eventfleet-worker"))
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return exitFatal
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flushTraces(ctx); err != nil {
			p.log.Warn("could not export the last spans", "err", err)
		}
	}()
	stopAdmin, err := p.serveAdmin()
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return exitFatal
	}
	defer stopAdmin()
	defer p.close()
	p.log.Info("starting worker", append([]any{
		"app", p.cfg.App(),
		"queue", p.w.Queue(),
		"bindings", p.w.Bindings(),
		"exchange", p.cfg.Exchange,
		"broker", amqp.RedactURL(p.cfg.AMQPURL),
	}, p.attrs...)...)
	return p.run()
}

// process is one "worker run": its settings, logger and Worker.
type process struct {
	cfg   config.Worker
	log   *slog.Logger
	w     *amqp.Worker
	m     *metrics.Metrics
	attrs []any // log attributes describing the handler
	// handler is what HANDLER built; closeHandler releases its
	// connections (HANDLER=redis) once the Worker has stopped, nil when it
	// holds none.
	handler      event.Handler
	closeHandler func() error
	draining     atomic.Bool // set when shutdown begins: /readyz answers 503 from then
}

// newProcess reads the settings and builds the handler and the Worker. On a
// problem it prints it and returns nil with the exit code.
func newProcess(stdout, stderr io.Writer, environ map[string]string) (*process, int) {
	cfg, err := config.LoadWorker(environ)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return nil, exitUsage
	}
	// Stdout belongs to HANDLER=log's event lines; logs go to stderr.
	p := &process{cfg: cfg, log: cfg.Logger(stderr), m: metrics.New()}
	if cfg.Handler == "redis" {
		// go-redis writes its own lines (dial failures) to stderr in its
		// own format; they become debug lines of ours: the retried
		// events' errors say the same at info.
		redisbridge.SetLogger(p.log)
	}
	h, attrs, err := newHandler(cfg, stdout, p.m)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return nil, exitUsage
	}
	p.handler = h
	if c, ok := h.(io.Closer); ok {
		p.closeHandler = c.Close
	}
	p.attrs = attrs
	for _, w := range webhookWarnings(cfg) {
		p.log.Warn(w, attrs...)
	}
	if p.w, err = amqp.NewWorker(cfg.WorkerConfig(p.log, p.m), h); err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		if errors.Is(err, amqp.ErrInvalidConfig) {
			return nil, exitUsage
		}
		return nil, exitFatal
	}
	return p, exitOK
}

// checkHandler says at start, at WARN, when HANDLER=redis's Redis does
// not answer: events would fail and be retried until it does, and a wrong
// password is better seen now than at the first event. It does not wait.
func (p *process) checkHandler(ctx context.Context) {
	h, ok := p.handler.(*redisfanout.Handler)
	if !ok {
		return
	}
	go func() {
		if err := h.Ping(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("Redis does not answer; events will be retried until it does", append([]any{"err", err}, p.attrs...)...)
		}
	}()
}

// close releases the handler's connections, after the Worker stopped.
func (p *process) close() {
	if p.closeHandler != nil {
		if err := p.closeHandler(); err != nil {
			p.log.Warn("cannot close the handler's connections", "err", err)
		}
	}
}

// serveAdmin serves /metrics, /healthz and /readyz unless METRICS_ADDR=off;
// the returned function stops it.
func (p *process) serveAdmin() (stop func(), err error) {
	if p.cfg.MetricsAddr == config.MetricsOff {
		return func() {}, nil
	}
	ready := func() error {
		switch {
		case p.draining.Load():
			return errors.New("shutting down")
		case !p.w.Consuming():
			if last := p.w.LastError(); last != nil {
				return fmt.Errorf("not consuming: connecting to the broker: %w", last)
			}
			return errors.New("not consuming: connecting to the broker")
		case p.w.HopsRefused() != nil:
			// Consuming, but failed events are held unacked until the
			// broker takes their retries and dead letters.
			return fmt.Errorf("retries and dead letters refused by the broker: %w", p.w.HopsRefused())
		}
		return nil
	}
	return admin.Serve(admin.Config{
		Addr:     p.cfg.MetricsAddr,
		Fallback: p.cfg.MetricsAddrDefault,
		Identity: admin.NewIdentity(admin.RoleWorker, p.cfg.App()),
		Metrics:  p.m,
		Ready:    ready,
		Broker:   p.w.Node,
		Logger:   p.log,
	})
}

// run starts the Worker and waits for a signal (then drains) or a fatal
// error; it returns the exit code.
func (p *process) run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The worker's lifetime is not tied to ctx: a signal starts the drain
	// rather than cutting connections.
	if err := p.w.Start(context.Background()); err != nil {
		p.log.Error("cannot start worker", "err", err)
		return exitFatal
	}
	p.checkHandler(ctx)
	select {
	case <-p.w.Done():
		err := p.w.Err()
		if err == nil {
			err = errors.New("worker stopped without being asked to")
		}
		p.log.Error("worker stopped", "err", err)
		return exitFatal
	case <-ctx.Done():
	}
	// From here a second signal kills the process at once (Go's default
	// handling), for an operator who will not wait for the drain.
	stop()
	return p.drain()
}

// drain stops the Worker within SHUTDOWN_TIMEOUT and returns the exit code.
func (p *process) drain() int {
	p.draining.Store(true)
	p.log.Info("shutting down: waiting for running handlers", "timeout", p.cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	err := p.w.Stop(ctx)
	st := p.w.Stats()
	stats := []any{"handled", st.Handled, "retried", st.Retried, "dead_lettered", st.DeadLettered}
	if err != nil {
		// Still exit 0. The handlers that did not finish had their contexts
		// cancelled and their deliveries left unacked; closing the
		// connection hands those back to the broker, which redelivers them
		// to this app's next worker. Nothing is lost (delivery is at least
		// once; handlers deduplicate on the event's source and ID), so this is a normal
		// stop, not a crash for the orchestrator to act on.
		p.log.Warn("shutdown timeout passed; unfinished events go back to the queue",
			append([]any{"timeout", p.cfg.ShutdownTimeout.String(), "err", err}, stats...)...)
		return exitOK
	}
	if err := p.w.Err(); err != nil {
		p.log.Error("worker stopped", "err", err)
		return exitFatal
	}
	p.log.Info("worker stopped", stats...)
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

// webhookWarnings are the WARN lines a webhook handler's settings call
// for at start: settings that work, but that an operator should change.
func webhookWarnings(cfg config.Worker) []string {
	if cfg.Handler != "webhook" {
		return nil
	}
	var out []string
	if len(cfg.WebhookConfig().Secrets) == 0 {
		out = append(out, "webhook requests are unsigned: the receiver cannot tell them from anyone else's nor reject a replay; "+
			"set WEBHOOK_SECRET=whsec_… and verify the webhook-signature header")
	}
	if webhook.Cleartext(cfg.WebhookURL) {
		out = append(out, "webhook requests cross the network in clear text (WEBHOOK_URL is http:// to a host that is "+
			"neither loopback nor Fly's private network): use https://, or a .internal or .flycast address on Fly")
	}
	return out
}

// newHandler builds the handler HANDLER names, and log attributes that
// describe it; m receives the handler's own metrics (HANDLER=redis).
func newHandler(cfg config.Worker, stdout io.Writer, m *metrics.Metrics) (event.Handler, []any, error) {
	switch cfg.Handler {
	case "webhook":
		h, err := webhook.New(cfg.WebhookConfig())
		if err != nil {
			// webhook's errors never quote the URL's password or query.
			return nil, nil, &config.Error{Var: "WEBHOOK_URL", Value: "<hidden>", Reason: err.Error()}
		}
		return h, []any{"handler", cfg.Handler, "webhook", h.URL(), "webhook_timeout", cfg.WebhookTimeout.String(),
			"webhook_secrets", len(cfg.WebhookConfig().Secrets)}, nil
	case "log":
		return eventlog.New(stdout), []any{"handler", cfg.Handler}, nil
	case "redis":
		rc := cfg.RedisConfig(m)
		h, err := redisfanout.New(rc)
		if err != nil {
			// Checked by config.LoadWorker already; the URL's password is hidden.
			return nil, nil, err
		}
		return h, []any{"handler", cfg.Handler, "redis", h.URL(), "redis_channel", rc.Channel,
			"redis_timeout", rc.Timeout.String()}, nil
	default:
		// config.LoadWorker accepts only the cases above.
		return nil, nil, &config.Error{Var: "HANDLER", Value: cfg.Handler, Reason: config.HandlerUsage}
	}
}
