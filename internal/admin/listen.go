package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
)

// listen binds addr. With fallback, a taken port is replaced by one the
// kernel picks on the same host, so that several processes on one machine
// (two workers, a worker beside `publisher serve`) start with the defaults.
func listen(addr string, fallback bool, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if !fallback || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on METRICS_ADDR=%s: %w (set another address, or METRICS_ADDR=off)", addr, err)
	}
	host, _, serr := net.SplitHostPort(addr)
	if serr != nil {
		return nil, fmt.Errorf("METRICS_ADDR=%s: %w", addr, serr)
	}
	ln, ferr := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if ferr != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR=%s: %w; and on a free port: %w (set METRICS_ADDR, or METRICS_ADDR=off)", addr, err, ferr)
	}
	log.Warn("the default METRICS_ADDR is taken: serving /metrics, /healthz and /readyz on a free port instead; set METRICS_ADDR to choose one",
		"default", addr, "addr", ln.Addr().String())
	return ln, nil
}
