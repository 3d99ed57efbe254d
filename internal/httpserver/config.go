package httpserver

import "time"

// Defaults of Config, for a public ingest: bodies up to 1 MiB, answers that
// wait up to PUBLISH_TIMEOUT for the broker.
const (
	// DefaultReadHeaderTimeout bounds the header: it arrives in one or two
	// packets from any real client, so 5 s is generous even on a bad link.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the whole request: a 1 MiB body on a slow
	// 100 kB/s link takes about 10.5 s, after a header of up to 5 s.
	DefaultReadTimeout = 20 * time.Second
	// WriteMargin is added to ReadTimeout and HandlerTimeout to make the
	// default WriteTimeout: the time to write an answer (a bounded JSON
	// object) once the handler has it.
	WriteMargin = 5 * time.Second
	// DefaultIdleTimeout bounds a keep-alive connection between requests.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and header: room for an
	// Authorization bearer key, traceparent/tracestate and a proxy's
	// X-Forwarded-* headers, far below Go's default of 1 MiB.
	DefaultMaxHeaderBytes = 16 << 10
)

// Config bounds each phase of a connection. Every field's zero (or a
// negative value) means its default; no bound can be turned off.
type Config struct {
	// ReadHeaderTimeout bounds reading a request's header; a client still
	// sending it then is disconnected (after a 400 when part of the header
	// came). Defaults to DefaultReadHeaderTimeout (5 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, header and body; a body
	// still arriving then fails the handler's read (the ingest answers 408)
	// and the connection closes. Defaults to DefaultReadTimeout (20 s).
	ReadTimeout time.Duration
	// HandlerTimeout is how long a handler may work after reading the
	// request before it answers (for `publisher serve`, PUBLISH_TIMEOUT).
	// It only lengthens the default WriteTimeout. Zero adds nothing.
	HandlerTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request's header to the
	// end of its answer, so it covers reading the body, the handler's work
	// and writing; a write after it fails and the connection closes.
	// Defaults to ReadTimeout + HandlerTimeout + WriteMargin (5 s).
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request before the server closes it. Defaults to
	// DefaultIdleTimeout (60 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and header; a larger one is
	// answered 431. Go reads up to 4 KiB beyond it before it notices.
	// Defaults to DefaultMaxHeaderBytes (16 KiB).
	MaxHeaderBytes int
}

// Admin is the Config of the operational endpoints on METRICS_ADDR
// (/metrics, /healthz, /readyz): bodyless GETs from probes and scrapers, so
// reading is short; writing keeps room for a large /metrics to a slow
// scraper.
func Admin() Config {
	return Config{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
}

// Or returns c with each unset (zero or negative) field taken from d, such
// as a test's short IdleTimeout over Admin(). HandlerTimeout is taken too.
func (c Config) Or(d Config) Config {
	c.ReadHeaderTimeout = or(c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	c.ReadTimeout = or(c.ReadTimeout, d.ReadTimeout)
	c.HandlerTimeout = or(c.HandlerTimeout, d.HandlerTimeout)
	c.WriteTimeout = or(c.WriteTimeout, d.WriteTimeout)
	c.IdleTimeout = or(c.IdleTimeout, d.IdleTimeout)
	c.MaxHeaderBytes = or(c.MaxHeaderBytes, d.MaxHeaderBytes)
	return c
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	c = c.Or(Config{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	})
	c.HandlerTimeout = max(c.HandlerTimeout, 0)
	c.WriteTimeout = or(c.WriteTimeout, c.ReadTimeout+c.HandlerTimeout+WriteMargin)
	return c
}

func or[T time.Duration | int](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}
