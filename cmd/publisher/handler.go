package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/tracing"
)

// publisher is what the HTTP handler needs from *amqp.Publisher.
type publisher interface {
	// PublishBatch returns nil once every event is confirmed, else an error;
	// an *amqp.BatchError says which events were not confirmed.
	PublishBatch(ctx context.Context, evs []event.Event) error
	Connected() bool
}

// retryAfter is the Retry-After of a 503, in seconds: long enough for a
// reconnect or a resource alarm to clear, short enough not to stall clients.
const retryAfter = "5"

// maxListedInvalid bounds the "invalid" list of a 400, so a huge bad array
// does not produce a huge answer.
const maxListedInvalid = 20

type handlerConfig struct {
	// Timeout bounds waiting for the confirms of one request.
	Timeout time.Duration
	// MaxBody is the largest POST /events body in bytes.
	MaxBody int64
	Logger  *slog.Logger
	// Metrics, when set, is served on GET /metrics (when METRICS_ADDR is
	// PUBLISHER_ADDR).
	Metrics *metrics.Metrics
	// Identity names the process in /healthz and /readyz, as on
	// METRICS_ADDR, so that `publisher health` can tell it is asking its own.
	Identity admin.Identity
}

type handler struct {
	pub publisher
	cfg handlerConfig
}

// newHandler serves POST /events, GET /healthz and GET /readyz.
func newHandler(p publisher, cfg handlerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &handler{pub: p, cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("/events", h.events)
	mux.HandleFunc("/healthz", h.healthz)
	mux.HandleFunc("/readyz", h.readyz)
	endpoints := "POST /events, GET /healthz and GET /readyz"
	if cfg.Metrics != nil {
		mux.Handle("/metrics", cfg.Metrics.Handler())
		endpoints = "POST /events, GET /healthz, GET /readyz and GET /metrics"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorResponse{Error: "not found: the endpoints are " + endpoints})
	})
	return mux
}

type acceptedResponse struct {
	IDs []string `json:"ids"`
}

type errorResponse struct {
	Error string `json:"error"`
	// Invalid lists the bad elements of an array, by index.
	Invalid []invalidEvent `json:"invalid,omitempty"`
}

type invalidEvent struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// unconfirmedResponse is a 503: the client should publish the unconfirmed
// events again, with the same ids so that consumers can drop duplicates.
type unconfirmedResponse struct {
	Error       string   `json:"error"`
	Confirmed   []string `json:"confirmed"`
	Unconfirmed []string `json:"unconfirmed"`
}

type healthResponse struct {
	Status          string `json:"status"`
	BrokerConnected bool   `json:"broker_connected"`
	Role            string `json:"role,omitempty"`
	App             string `json:"app,omitempty"`
	Instance        string `json:"instance,omitempty"`
}

func (h *handler) health(status string, connected bool) healthResponse {
	id := h.cfg.Identity
	return healthResponse{Status: status, BrokerConnected: connected, Role: id.Role, App: id.App, Instance: id.Instance}
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: fmt.Sprintf("method %s not allowed: POST events to /events", r.Method)})
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
	h.cfg.Logger.Debug("publishing events", "count", len(evs))
	err = h.pub.PublishBatch(ctx, evs)
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	if err == nil {
		h.cfg.Logger.Debug("events published", "count", len(evs))
		writeJSON(w, http.StatusAccepted, acceptedResponse{IDs: ids})
		return
	}
	h.unconfirmed(w, ids, err)
}

// unconfirmed answers 503 saying which events were confirmed and which not.
func (h *handler) unconfirmed(w http.ResponseWriter, ids []string, err error) {
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
	h.cfg.Logger.Warn("events not confirmed", "confirmed", len(resp.Confirmed),
		"unconfirmed", len(resp.Unconfirmed), "err", cause)
	w.Header().Set("Retry-After", retryAfter)
	writeJSON(w, http.StatusServiceUnavailable, resp)
}

// parseEvents reads one event object or a non-empty array of them. On failure
// it returns the 400 answer, naming every bad index of an array.
func parseEvents(body []byte) ([]event.Event, *errorResponse) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, &errorResponse{Error: "empty body: send one event object or a JSON array of them"}
	case trimmed[0] == '{':
		ev, err := parseEvent(trimmed)
		if err != nil {
			return nil, &errorResponse{Error: "invalid event: " + err.Error()}
		}
		return []event.Event{ev}, nil
	case trimmed[0] != '[':
		return nil, &errorResponse{Error: "invalid JSON: send one event object or a JSON array of them"}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, &errorResponse{Error: "invalid JSON: " + err.Error()}
	}
	if len(raws) == 0 {
		return nil, &errorResponse{Error: "empty array: send at least one event"}
	}
	evs := make([]event.Event, 0, len(raws))
	var bad []invalidEvent
	nbad := 0
	for i, raw := range raws {
		ev, err := parseEvent(raw)
		if err != nil {
			nbad++
			if len(bad) < maxListedInvalid {
				bad = append(bad, invalidEvent{Index: i, Error: err.Error()})
			}
			continue
		}
		evs = append(evs, ev)
	}
	if nbad == 0 {
		return evs, nil
	}
	msg := fmt.Sprintf("invalid event at index %d: %s", bad[0].Index, bad[0].Error)
	if nbad > 1 {
		msg += fmt.Sprintf(" (and %d more invalid events); nothing was published", nbad-1)
	} else {
		msg += "; nothing was published"
	}
	return nil, &errorResponse{Error: msg, Invalid: bad}
}

// isJSON accepts application/json, text/json and any +json type.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, h.health("ok", h.pub.Connected()))
}

// readyz fails while the broker is not connected, so a load balancer sends
// events to instances that can confirm them.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	if !h.pub.Connected() {
		writeJSON(w, http.StatusServiceUnavailable, h.health("not ready: broker not connected", false))
		return
	}
	writeJSON(w, http.StatusOK, h.health("ready", true))
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: fmt.Sprintf("method %s not allowed: use GET", r.Method)})
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
