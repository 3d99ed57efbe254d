// Package httpserver is how eventfleet builds an http.Server: every server a
// binary runs gets a bound on each phase of a connection, so that a slow or
// idle client holds a connection (a goroutine, buffers, a file descriptor, and
// the drain at shutdown) only for a known time.
//
// The phases and the Config field that bounds each:
//
//	ReadHeaderTimeout  from the first byte of a request to the end of its header
//	ReadTimeout        the whole request, header and body
//	WriteTimeout       from the end of the header to the end of the answer:
//	                   reading the body, the handler's work and writing
//	IdleTimeout        a keep-alive connection waiting for its next request
//	MaxHeaderBytes     the request line and header, in bytes (larger: 431)
//
// A server built by New always has all five: a zero (or negative) field takes
// its default, so no configuration turns a bound off. The defaults fit
// `publisher serve`, a public ingest of bodies up to 1 MiB whose answers wait
// for broker confirms; Admin holds the smaller values of the operational
// endpoints (/metrics, /healthz, /readyz).
package httpserver
