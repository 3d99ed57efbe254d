// Package admin serves the operational endpoints of eventfleet's binaries on
// METRICS_ADDR: /metrics (Prometheus), /healthz (the process is alive) and
// /readyz (it is doing its job: connected, and for a worker, consuming).
// Orchestrators route traffic and raise alerts on /readyz; they restart on
// /healthz, so it never depends on the broker: a broker outage must not make
// every worker restart in a loop.
//
// Both answers name the process (role, app and a random instance id made at
// start), and each process records its bound address in a runtime directory,
// so that a binary's `health` command asks its own process rather than
// whatever answers on the default port (see Check).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/eventfleet/eventfleet/internal/httpserver"
	"github.com/eventfleet/eventfleet/metrics"
)

// ReadyFunc reports nil when the process is ready, else why not.
type ReadyFunc func() error

// NodeFunc names the broker node the process uses (host:port), or while
// it is not connected, the one it tries next.
type NodeFunc func() string

// Status is the JSON body of /healthz and /readyz. Status and Reason are
// what probes read; Role, App and Instance say which process answered.
type Status struct {
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Role     string `json:"role,omitempty"`
	App      string `json:"app,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Broker is the broker node (host:port) /readyz reports the process
	// using or trying, when it was given one (see Config.Broker).
	Broker string `json:"broker,omitempty"`
}

// Routes registers /metrics (when m is not nil), /healthz and /readyz on mux;
// their answers carry id, and /readyz's the broker node when broker is not
// nil.
func Routes(mux *http.ServeMux, m *metrics.Metrics, id Identity, ready ReadyFunc, broker NodeFunc) {
	if m != nil {
		mux.Handle("/metrics", m.Handler())
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		write(w, http.StatusOK, id.status("ok", ""))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		err := ready()
		s := id.status("ready", "")
		if err != nil {
			s = id.status("not ready", err.Error())
		}
		if broker != nil {
			s.Broker = broker()
		}
		code := http.StatusOK
		if err != nil {
			code = http.StatusServiceUnavailable
		}
		write(w, code, s)
	})
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	write(w, http.StatusMethodNotAllowed, Status{Status: "error", Reason: "use GET"})
	return false
}

func write(w http.ResponseWriter, code int, s Status) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(s)
}

// Config configures Start.
type Config struct {
	// Addr is METRICS_ADDR, host:port. Required.
	Addr string
	// Fallback, when Addr is taken, listens on a free port of the same host
	// instead of failing, and logs the address at WARN. Only for the default
	// address (METRICS_ADDR unset): one an operator chose fails at start.
	Fallback bool
	// Identity names the process in the answers. Required.
	Identity Identity
	// Metrics is served on /metrics; nil serves no /metrics.
	Metrics *metrics.Metrics
	// Ready decides /readyz. Required.
	Ready ReadyFunc
	// Broker names the broker node in /readyz's answer (with several
	// addresses in AMQP_URL, which one is in use). Nil names none.
	Broker NodeFunc
	// Logger gets the fallback warning and server errors. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// HTTP bounds the server's connections; each unset field takes
	// httpserver.Admin's value (a test shortens one).
	HTTP httpserver.Config
}

// Server is a running endpoint server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on cfg.Addr (named METRICS_ADDR in errors) and serves the
// endpoints in the background.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := listen(cfg.Addr, cfg.Fallback, cfg.Logger)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	Routes(mux, cfg.Metrics, cfg.Identity, cfg.Ready, cfg.Broker)
	s := &Server{
		srv:  httpserver.New(mux, cfg.HTTP.Or(httpserver.Admin()), cfg.Logger),
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the bound address, which differs from METRICS_ADDR when its port
// was 0 or the default was taken.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop closes the server, waiting for running requests until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Serve is what a binary does with its admin endpoints: Start, log the bound
// address (it differs from METRICS_ADDR when its port was 0 or the default
// was taken) and announce it for the health command. stop removes the record
// and stops the server, giving running requests 2 s.
func Serve(cfg Config) (stop func(), err error) {
	s, err := Start(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("serving /metrics, /healthz and /readyz", "addr", s.Addr(), "instance", cfg.Identity.Instance)
	unannounce := Announce(log, cfg.Identity, s.Addr())
	return func() {
		unannounce()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	}, nil
}
