package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/propagation"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/tracing"
)

// Path is where the Handler takes events.
const Path = "/events"

// retryAfter is the Retry-After of a 503, in seconds: long enough for a
// reconnect or a resource alarm to clear, short enough not to stall clients.
const retryAfter = "5"

// Handler serves POST /events. Mount it at "/" of a mux: other paths get a
// JSON 404, and routes registered beside it (the admin endpoints) win over
// it for their own paths.
type Handler struct {
	cfg    Config
	pub    Publisher
	log    *slog.Logger
	events http.Handler // h.serveEvents inside cfg.Middleware
}

// New validates cfg and returns the Handler.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, pub: cfg.Publisher, log: cfg.Logger}
	h.events = http.HandlerFunc(h.serveEvents)
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		h.events = cfg.Middleware[i](h.events)
	}
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		writeJSON(w, http.StatusNotFound, errorResponse{Error: "not found: POST events to " + Path})
		return
	}
	h.events.ServeHTTP(w, r)
}

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: fmt.Sprintf("method %s not allowed: POST events to %s", r.Method, Path)})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		writeJSON(w, http.StatusUnsupportedMediaType, errorResponse{Error: fmt.Sprintf("Content-Type %q is not JSON: send application/json", ct)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse{Error: fmt.Sprintf("body is larger than %d bytes: send fewer events per request", tooLarge.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: fmt.Sprintf("reading body: %v", err)})
		return
	}
	evs, bad := parseEvents(body)
	if bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}

	// A client that traces sends traceparent; the events' publish spans and
	// the workers' handlers continue its trace.
	ctx := tracing.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	h.log.Debug("publishing events", "count", len(evs))
	err = h.pub.PublishBatch(ctx, evs)
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	if err == nil {
		h.log.Debug("events published", "count", len(evs))
		writeJSON(w, http.StatusAccepted, acceptedResponse{IDs: ids})
		return
	}
	h.unconfirmed(w, ids, err)
}

// unconfirmed answers 503 saying which events were confirmed and which not.
func (h *Handler) unconfirmed(w http.ResponseWriter, ids []string, err error) {
	resp := unconfirmedResponse{Confirmed: []string{}, Unconfirmed: []string{}}
	cause := err
	var batch *amqp.BatchError
	if errors.As(err, &batch) && len(batch.Errs) == len(ids) {
		cause = nil
		for i, e := range batch.Errs {
			if e == nil {
				resp.Confirmed = append(resp.Confirmed, ids[i])
				continue
			}
			resp.Unconfirmed = append(resp.Unconfirmed, ids[i])
			if cause == nil {
				cause = e
			}
		}
	} else {
		resp.Unconfirmed = ids
	}
	var why string
	switch {
	case !h.pub.Connected():
		why = "the broker is not connected"
	case errors.Is(cause, context.DeadlineExceeded):
		why = fmt.Sprintf("the broker did not confirm within %v", h.cfg.Timeout)
	default:
		why = "the broker did not confirm"
	}
	resp.Error = fmt.Sprintf("%d of %d events not confirmed: %s (%v); publish them again with the same ids",
		len(resp.Unconfirmed), len(ids), why, cause)
	h.log.Warn("events not confirmed", "confirmed", len(resp.Confirmed),
		"unconfirmed", len(resp.Unconfirmed), "err", cause)
	w.Header().Set("Retry-After", retryAfter)
	writeJSON(w, http.StatusServiceUnavailable, resp)
}
