package ingest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// loggedIDs is how many ids of an accepted request the access log names:
// enough to find a request from an event, not a copy of the request.
const loggedIDs = 3

// accessEntry is what the access log line says of a request beyond what the
// request and the answer tell: filled in by serveEvents as it goes.
type accessEntry struct {
	caller string
	events int      // counted by the scan, so refused requests have it too
	ids    []string // the first loggedIDs, when events were published
}

type accessEntryKey struct{}

// entryOf returns the request's entry; a throwaway one outside accessLog.
func entryOf(r *http.Request) *accessEntry {
	if e, ok := r.Context().Value(accessEntryKey{}).(*accessEntry); ok {
		return e
	}
	return &accessEntry{}
}

// accessLog logs one line per request served by next, whatever answered it
// (a middleware's 401 too). It logs no body and no header: never key
// material. It also limits the body to maxBody, with the server's own
// ResponseWriter, so that the server closes the connection after an
// oversized body rather than reading on.
func accessLog(log *slog.Logger, maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		entry := &accessEntry{}
		body := &countingBody{ReadCloser: http.MaxBytesReader(w, r.Body, maxBody)}
		r = r.WithContext(context.WithValue(r.Context(), accessEntryKey{}, entry))
		r.Body = body
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		attrs := []slog.Attr{
			slog.String("caller", entry.caller),
			slog.String("remote", r.RemoteAddr),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.code()),
			slog.Int("events", entry.events),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", body.n),
		}
		if len(entry.ids) > 0 {
			attrs = append(attrs, slog.Any("ids", entry.ids))
		}
		// The request's context may be cancelled (the client left); the line
		// is logged anyway.
		log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelInfo, "request", attrs...)
	})
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n int64 // written by the handler's goroutine only, read after it returns
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// statusRecorder remembers the status of the answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // a 1xx is not the answer
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// code is the status sent; a handler that wrote nothing sent 200.
func (s *statusRecorder) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
