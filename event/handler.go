package event

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/eventfleet/eventfleet/retry"
)

// Handler handles one event. Returning nil acknowledges it. An error makes the
// worker retry it later (after a delay), unless the error is marked permanent
// with retry.Permanent, in which case it goes to the dead-letter queue at once.
// The context ends when the handler timeout passes or the worker stops hard;
// return soon after it does. A handler that runs on regardless is abandoned a
// little later (its event retried, or left unacked on a hard stop) and its
// result is dropped. Handlers run concurrently, up to the worker's concurrency.
type Handler interface {
	Handle(ctx context.Context, ev Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev Event) error { return f(ctx, ev) }

// ErrNoHandler is returned by Registry.Handle for an event type with no handler
// and no catch-all. It is permanent: retrying would not help.
var ErrNoHandler = errors.New("no handler registered for event type")

// Registry routes events to a handler per event type, with an optional
// catch-all for the rest. Register everything before the worker starts; a
// Registry is not safe for registration while it handles events.
type Registry struct {
	handlers map[string]Handler
	fallback Handler
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{handlers: map[string]Handler{}} }

// On registers h for events of type t. It panics on an invalid type or a
// second handler for the same type: both are programming errors found at start.
func (r *Registry) On(t string, h Handler) *Registry {
	if err := ValidateType(t); err != nil {
		panic(fmt.Sprintf("event.Registry.On: %v", err))
	}
	if _, dup := r.handlers[t]; dup {
		panic(fmt.Sprintf("event.Registry.On: a handler for %q is already registered", t))
	}
	r.handlers[t] = h
	return r
}

// OnFunc registers a function for events of type t.
func (r *Registry) OnFunc(t string, f func(context.Context, Event) error) *Registry {
	return r.On(t, HandlerFunc(f))
}

// Default sets the catch-all handler for types with no handler of their own.
func (r *Registry) Default(h Handler) *Registry {
	r.fallback = h
	return r
}

// Types returns the registered event types, sorted, and whether a catch-all is
// set. A worker with no explicit binding list binds exactly these types when
// there is no catch-all, so it never receives events it cannot handle.
func (r *Registry) Types() (types []string, catchAll bool) {
	for t := range r.handlers {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, r.fallback != nil
}

// Handle dispatches ev to its handler.
func (r *Registry) Handle(ctx context.Context, ev Event) error {
	if h, ok := r.handlers[ev.Type]; ok {
		return h.Handle(ctx, ev)
	}
	if r.fallback != nil {
		return r.fallback.Handle(ctx, ev)
	}
	return retry.Permanent(fmt.Errorf("%w %q", ErrNoHandler, ev.Type))
}
