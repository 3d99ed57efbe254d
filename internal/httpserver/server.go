package httpserver

import (
	"log/slog"
	"net/http"
)

// New returns a server of h bounded by cfg (its unset fields at their
// defaults). The server's own errors (a failed TLS handshake, a handler's
// panic, a failed accept) go to log at WARN; nil means slog.Default().
func New(h http.Handler, cfg Config, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
