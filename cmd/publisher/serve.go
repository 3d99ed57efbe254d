package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/internal/httpserver"
	"github.com/eventfleet/eventfleet/metrics"
)

// errShutdownTimeout: requests or publishes were still running when
// SHUTDOWN_TIMEOUT ran out.
var errShutdownTimeout = errors.New("shutdown did not finish within SHUTDOWN_TIMEOUT")

// serve runs `publisher serve` until ctx ends (a signal) or the publisher
// stops on a fatal error, then drains: the server stops accepting and waits
// for its requests, then the publisher stops.
func serve(ctx context.Context, cfg config.Publisher, p *amqp.Publisher, m *metrics.Metrics, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on PUBLISHER_ADDR=%s: %w", cfg.Addr, err)
	}
	// One readiness for both ports: the orchestrator may ask either.
	ready := func() error {
		switch {
		case ctx.Err() != nil:
			return errors.New("shutting down")
		case !p.Connected():
			if last := p.LastError(); last != nil {
				return fmt.Errorf("broker not connected: %w", last)
			}
			return errors.New("broker not connected")
		}
		return nil
	}
	events, err := ingest.New(cfg.IngestConfig(p, log))
	if err != nil {
		_ = ln.Close()
		return err
	}
	if cfg.Auth == config.AuthNone {
		log.Warn("PUBLISHER_AUTH=none: anyone who reaches PUBLISHER_ADDR can publish any event; use it for a local demo only",
			"addr", cfg.Addr)
	} else {
		log.Info("callers authenticate with API keys", "keys", cfg.Keys.Len(), "callers", cfg.Keys.Callers())
	}
	// /metrics goes on its own address, METRICS_ADDR: PUBLISHER_ADDR is
	// often public (Fly's http_service), and metrics name event types and
	// volumes. Setting both to the same address shares the port on purpose
	// (but two ":0" are two ports the kernel picks).
	id := admin.NewIdentity(admin.RolePublisher, cfg.App())
	var shared *metrics.Metrics
	if _, port, _ := net.SplitHostPort(cfg.Addr); cfg.MetricsAddr == cfg.Addr && port != "0" {
		shared = m
		defer admin.Announce(log, id, ln.Addr().String())()
	} else if cfg.MetricsAddr != config.MetricsOff {
		stopAdmin, err := admin.Serve(admin.Config{
			Addr:     cfg.MetricsAddr,
			Fallback: cfg.MetricsAddrDefault,
			Identity: id,
			Metrics:  m,
			Ready:    ready,
			Broker:   p.Node,
			Logger:   log,
		})
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopAdmin()
	}
	// Slow and idle clients must not hold connections (and the drain)
	// forever; an answer may wait PUBLISH_TIMEOUT for confirms after the body.
	srv := httpserver.New(publicMux(events, shared, id, publicReady(ready)), httpserver.Config{HandlerTimeout: cfg.Timeout}, log)
	if err := p.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	// The bound address matters when PUBLISHER_ADDR has port 0.
	log.Info("listening", "addr", ln.Addr().String(), "broker", amqp.RedactURL(cfg.AMQPURL),
		"exchange", cfg.Exchange, "app_id", cfg.App())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case <-p.Done():
		runErr = publisherStopped(p)
	}

	// One budget for the whole drain, so SHUTDOWN_TIMEOUT is what an
	// orchestrator must allow before it kills us.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(drainCtx)
	stopErr := p.Stop(drainCtx)
	switch {
	case runErr != nil:
		return runErr
	case shutErr != nil || stopErr != nil:
		return fmt.Errorf("%w (%v): %w", errShutdownTimeout, cfg.ShutdownTimeout, errors.Join(shutErr, stopErr))
	}
	log.Info("stopped")
	return nil
}

// publisherStopped is why a long-running command ends when its Publisher
// stopped on its own (a fatal error).
func publisherStopped(p *amqp.Publisher) error {
	err := p.Err()
	if err == nil {
		err = amqp.ErrClosed
	}
	return fmt.Errorf("publisher stopped: %w", err)
}

// publicReady is ready for PUBLISHER_ADDR, which answers anyone: its reason
// says only the kind of failure, never the broker's address, user or
// certificates. METRICS_ADDR and the logs keep the whole reason.
func publicReady(ready admin.ReadyFunc) admin.ReadyFunc {
	return func() error {
		err := ready()
		if err == nil {
			return nil
		}
		for _, kind := range []error{amqp.ErrAccessRefused, amqp.ErrVhostNotFound, amqp.ErrTLS, amqp.ErrHandshakeTimeout, amqp.ErrTopologyMissing} {
			if errors.Is(err, kind) {
				return fmt.Errorf("broker not connected: %w", kind)
			}
		}
		if strings.HasPrefix(err.Error(), "broker not connected") {
			return errors.New("broker not connected")
		}
		return err // "shutting down"
	}
}

// publicMux is what PUBLISHER_ADDR serves: POST /events, and /healthz and
// /readyz as METRICS_ADDR answers them, since load balancers ask the port
// they send to; /metrics only when shared is not nil.
func publicMux(events http.Handler, shared *metrics.Metrics, id admin.Identity, ready admin.ReadyFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/", events)
	admin.Routes(mux, shared, id, ready, nil) // the broker's address is not for the public
	return mux
}
