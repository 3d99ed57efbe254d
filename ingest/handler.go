package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/time/rate"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/tracing"
)

// Path is where the Handler takes events.
const Path = "/events"

// retryAfter is the Retry-After of a 503, in seconds: long enough for a
// reconnect or a resource alarm to clear, short enough not to stall clients.
const retryAfter = "5"

// retryAfterBusy is the Retry-After of a 429 for want of room in flight, in
// seconds: a healthy broker confirms MaxInFlight events in about a second.
const retryAfterBusy = "1"

// Handler serves POST /events. Mount it at "/" of a mux: other paths get a
// JSON 404, and routes registered beside it (the admin endpoints) win over
// it for their own paths. Every request it serves, whatever the answer, is
// logged on Config.AccessLog.
type Handler struct {
	cfg      Config
	pub      Publisher
	log      *slog.Logger
	inFlight *inFlight
	rate     *rateLimits  // nil without Config.Rate
	serve    http.Handler // the access log around the 404 and h.serveEvents inside cfg.Middleware
}

// New validates cfg and returns the Handler.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, pub: cfg.Publisher, log: cfg.Logger, inFlight: &inFlight{max: cfg.MaxInFlight}}
	if cfg.Rate > 0 {
		h.rate = newRateLimits(cfg.Rate, cfg.Burst)
	}
	var events http.Handler = http.HandlerFunc(h.serveEvents)
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		events = cfg.Middleware[i](events)
	}
	if cfg.Auth == AuthKeys {
		events = authenticate(cfg.Keys, events)
	}
	h.serve = accessLog(cfg.AccessLog, cfg.MaxBody, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			writeJSON(w, http.StatusNotFound, errorResponse{Error: "not found: POST events to " + Path})
			return
		}
		events.ServeHTTP(w, r)
	}))
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve.ServeHTTP(w, r) }

// serveEvents checks the request from the cheapest to the costliest step,
// so that a refused request costs as little as its refusal needs: method,
// Content-Type, body size, a scan for the event count and depth, decoding,
// the caller's rate, room in flight; then it publishes.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	entry := entryOf(r)
	entry.caller = callerName(r)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed: POST events to %s", r.Method, Path)
		return
	}
	// A browser sends a cross-site form post or a text/plain one without a
	// preflight; a JSON type it may send only after one.
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "":
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type is missing: send application/json")
		return
	case !isJSON(ct):
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type %q is not JSON: send application/json", ct)
		return
	}
	// accessLog limited r.Body to MaxBody.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "body is larger than %d bytes: send fewer events per request", tooLarge.Limit)
			return
		}
		// The error names the server's own address: never send it.
		var timeout interface{ Timeout() bool }
		if errors.As(err, &timeout) && timeout.Timeout() {
			writeError(w, http.StatusRequestTimeout, "the body did not arrive in time: send it faster, or send fewer events per request")
			return
		}
		writeError(w, http.StatusBadRequest, "the body could not be read: it ended early or was malformed")
		return
	}
	shape := scanBody(body)
	entry.events = shape.events
	if shape.events > h.cfg.MaxEvents {
		writeError(w, http.StatusRequestEntityTooLarge, "%d events in one request, the limit is %d: send at most %d events per request",
			shape.events, h.cfg.MaxEvents, h.cfg.MaxEvents)
		return
	}
	if shape.depth > h.cfg.MaxDepth {
		writeError(w, http.StatusBadRequest, "an event nests %d levels deep, the limit is %d (the event object is level 1): flatten its data; nothing was published",
			shape.depth, h.cfg.MaxDepth)
		return
	}
	evs, bad := parseEvents(body)
	if bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	entry.events = len(evs)
	if c, ok := callerOf(r.Context()); ok {
		if msg := outOfScope(c, evs); msg != "" {
			writeError(w, http.StatusForbidden, "%s", msg)
			return
		}
		for i := range evs {
			evs[i].Source = c.Name // receivers see who sent it, and deduplicate per (source, id)
		}
	}
	if !h.admit(w, entry.caller, len(evs)) {
		return
	}
	defer h.inFlight.release(len(evs))
	h.publish(w, r, entry, evs)
}

// admit passes a request of n events through the caller's rate limit and
// into the room in flight, or answers 429. A request admitted holds its
// room until release.
func (h *Handler) admit(w http.ResponseWriter, caller string, n int) bool {
	now := time.Now()
	var tokens *rate.Reservation
	if h.rate != nil {
		r, wait := h.rate.reserve(caller, n, now)
		if r == nil {
			secs := max(int(math.Ceil(wait.Seconds())), 1)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "rate limit: %d events exceed %s's %g events/s (burst %d); nothing was published, retry after %ds",
				n, callerLabel(caller), h.cfg.Rate, h.cfg.Burst, secs)
			return false
		}
		tokens = r
	}
	if !h.inFlight.admit(n) {
		if tokens != nil {
			// Not published: the retry must not pay for these events twice.
			tokens.CancelAt(now)
		}
		w.Header().Set("Retry-After", retryAfterBusy)
		writeError(w, http.StatusTooManyRequests, "too many events awaiting the broker's confirms (the limit is %d across all requests); nothing was published, retry after %ss",
			h.cfg.MaxInFlight, retryAfterBusy)
		return false
	}
	return true
}

// callerLabel names a caller in an answer.
func callerLabel(caller string) string {
	if caller == "" {
		return "the anonymous caller"
	}
	return fmt.Sprintf("caller %q", caller)
}

// publish sends evs and answers 202 once all are confirmed, else 503.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, entry *accessEntry, evs []event.Event) {
	// A client that traces sends traceparent; the events' publish spans and
	// the workers' handlers continue its trace.
	ctx := tracing.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	h.log.Debug("publishing events", "count", len(evs))
	err := h.pub.PublishBatch(ctx, evs)
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	entry.ids = ids[:min(len(ids), loggedIDs)]
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
	shown := cause
	var why string
	switch {
	case amqp.IsPublishRefusal(cause):
		// The cause names the broker's exchange, vhost and user: the log
		// has it, the caller gets the kind. Checked before the connection:
		// a refusal also ends it.
		why = "the broker refuses this server's publishes (a permission or an exchange is missing); " +
			"an operator must fix the broker"
		shown = amqp.ErrAccessRefused
		if errors.Is(cause, amqp.ErrTopologyMissing) {
			shown = amqp.ErrTopologyMissing
		}
	case !h.pub.Connected():
		why = "the broker is not connected"
	case errors.Is(cause, amqp.ErrUnroutedRefused):
		// The cause names the broker's queue and the operator's remedy: the
		// log has it, the caller gets the gist.
		why = "no app is bound for the event type and the unrouted queue that keeps such events is full, " +
			"so publishing them again fails until an app binds the type or an operator empties that queue"
		shown = amqp.ErrUnroutedRefused
	case errors.Is(cause, context.DeadlineExceeded):
		why = fmt.Sprintf("the broker did not confirm within %v", h.cfg.Timeout)
	default:
		why = "the broker did not confirm"
	}
	resp.Error = fmt.Sprintf("%d of %d events not confirmed: %s (%v); publish them again with the same ids",
		len(resp.Unconfirmed), len(ids), why, shown)
	h.log.Warn("events not confirmed", "confirmed", len(resp.Confirmed),
		"unconfirmed", len(resp.Unconfirmed), "err", cause)
	w.Header().Set("Retry-After", retryAfter)
	writeJSON(w, http.StatusServiceUnavailable, resp)
}
