// Package admin serves the operational endpoints of eventfleet's binaries on
// METRICS_ADDR: /metrics (Prometheus), /healthz (the process is alive) and
// /readyz (it is doing its job: connected, and for a worker, consuming).
// Orchestrators route traffic and raise alerts on /readyz; they restart on
// /healthz, so it never depends on the broker: a broker outage must not make
// every worker restart in a loop.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/eventfleet/eventfleet/metrics"
)

// ReadyFunc reports nil when the process is ready, else why not.
type ReadyFunc func() error

// Status is the JSON body of /healthz and /readyz.
type Status struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Routes registers /metrics (when m is not nil), /healthz and /readyz on mux.
func Routes(mux *http.ServeMux, m *metrics.Metrics, ready ReadyFunc) {
	if m != nil {
		mux.Handle("/metrics", m.Handler())
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		write(w, http.StatusOK, Status{Status: "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		if err := ready(); err != nil {
			write(w, http.StatusServiceUnavailable, Status{Status: "not ready", Reason: err.Error()})
			return
		}
		write(w, http.StatusOK, Status{Status: "ready"})
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

// Server is a running endpoint server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr (named METRICS_ADDR in errors) and serves the
// endpoints in the background.
func Start(addr string, m *metrics.Metrics, ready ReadyFunc, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR=%s: %w (set another address, or METRICS_ADDR=off)", addr, err)
	}
	mux := http.NewServeMux()
	Routes(mux, m, ready)
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the bound address, useful when addr had port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop closes the server, waiting for running requests until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Probe asks the endpoint server on addr (a METRICS_ADDR value; an empty
// host means this machine) for /readyz, for container health checks in an
// image without curl. It returns nil when ready, else why not.
func Probe(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR=%s: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	var st Status
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&st)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s %s", url, resp.Status, st.Status, st.Reason)
	}
	return nil
}
