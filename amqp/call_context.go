package amqp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the context a handler runs with: its parent's values and
// cancellation (the hard stop) and the call's deadline. context.WithDeadline
// on every call starts a runtime timer and registers with the parent, a large
// share of a fast handler's cost (docs/benchmarks.md); a callContext does
// that only when the handler watches it. It is armed — backed by a real
// context.WithDeadline, to which every method then defers — by the first
// Done, and by Err or Value once it is due (the deadline passed, the parent
// is done, or the call ended), so what Err, Done and context.Cause say
// always agrees.
type callContext struct {
	parent   context.Context
	deadline time.Time

	armed atomic.Pointer[context.Context] // the real context, once armed
	ended atomic.Bool                     // end was called
	mu    sync.Mutex                      // arming, and end against it
	stop  context.CancelFunc              // the real context's; set with armed, under mu
}

var _ context.Context = (*callContext)(nil)

// newCallContext is a context that ends at deadline, or earlier with parent.
func newCallContext(parent context.Context, deadline time.Time) *callContext {
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return &callContext{parent: parent, deadline: deadline}
}

func (c *callContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callContext) Done() <-chan struct{} { return c.arm().Done() }

func (c *callContext) Err() error { return c.current().Err() }

func (c *callContext) Value(key any) any { return c.current().Value(key) }

// end is the call's end, as a CancelFunc is: the context is cancelled from
// then on (a goroutine the handler left behind sees it), and an armed one's
// timer is released.
func (c *callContext) end() {
	c.ended.Store(true)
	c.mu.Lock()
	stop := c.stop
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// expired reports whether the deadline has passed, without arming c.
func (c *callContext) expired() bool {
	if p := c.armed.Load(); p != nil {
		return (*p).Err() == context.DeadlineExceeded
	}
	return !time.Now().Before(c.deadline)
}

// current is the armed context, or the parent while the call is not due.
func (c *callContext) current() context.Context {
	if p := c.armed.Load(); p != nil {
		return *p
	}
	if c.due() {
		return c.arm()
	}
	return c.parent
}

// due reports a context that an armed one would report done.
func (c *callContext) due() bool {
	return c.ended.Load() || c.parent.Err() != nil || !time.Now().Before(c.deadline)
}

// arm backs c with the real context, once.
func (c *callContext) arm() context.Context {
	if p := c.armed.Load(); p != nil {
		return *p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.armed.Load(); p != nil {
		return *p
	}
	ctx, stop := context.WithDeadline(c.parent, c.deadline)
	// end stored ended before taking mu: either it finds stop set below, or
	// this sees ended.
	if c.ended.Load() {
		stop()
	}
	c.stop = stop
	c.armed.Store(&ctx)
	return ctx
}
