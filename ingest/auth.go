package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/eventfleet/eventfleet/event"
)

// Auth is how the Handler authenticates its callers.
type Auth int

const (
	// AuthKeys, the zero value, requires "Authorization: Bearer <key>" with
	// a key of Config.Keys: the caller it names becomes the events' source
	// (AMQP app_id), and its key's scope limits the event types it may send.
	AuthKeys Auth = iota
	// AuthNone accepts every request; the events' source is the
	// Publisher's own app id. For a local demo, or behind a gateway that
	// authenticates.
	AuthNone
)

func (a Auth) String() string {
	switch a {
	case AuthKeys:
		return "keys"
	case AuthNone:
		return "none"
	default:
		return fmt.Sprintf("Auth(%d)", int(a))
	}
}

// bearerChallenge answers a request without a valid key (RFC 6750); an
// unknown key adds error="invalid_token".
const bearerChallenge = `Bearer realm="eventfleet"`

type callerKey struct{}

// withCaller records the authenticated caller in the request's context.
func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerOf is the authenticated caller; false with AuthNone.
func callerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// authenticate answers 401 unless the request carries a key of keys, and
// hands the request on with its caller. It runs before the body is read, so
// an anonymous client costs no more than its headers.
func authenticate(keys *Keys, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			unauthorized(w, bearerChallenge, "missing API key: send Authorization: Bearer <key>")
			return
		}
		c, ok := keys.Authenticate(token)
		if !ok {
			unauthorized(w, bearerChallenge+`, error="invalid_token"`, "unknown API key")
			return
		}
		entryOf(r).caller = c.Name
		next.ServeHTTP(w, r.WithContext(withCaller(r.Context(), c)))
	})
}

// bearer takes the token of an "Authorization: Bearer <token>" value; the
// scheme is case-insensitive (RFC 9110).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func unauthorized(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, http.StatusUnauthorized, errorResponse{Error: msg})
}

// outOfScope is the 403 of a request with an event type its caller's key
// does not allow, or "" when every type is allowed. A request is all or
// nothing, so one such event refuses the whole request.
func outOfScope(c Caller, evs []event.Event) string {
	for i := range evs {
		if !c.Allows(evs[i].Type) {
			return fmt.Sprintf("caller %q may not publish events of type %q (its key allows %s); nothing was published",
				c.Name, evs[i].Type, strings.Join(c.Types(), ", "))
		}
	}
	return ""
}
