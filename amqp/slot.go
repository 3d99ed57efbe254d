package amqp

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
)

// handlerCall is a delivery whose handler is running, as its slot sees it.
type handlerCall struct {
	j     job
	ev    event.Event
	ctx   context.Context // the process span's; the handler gets a child with a deadline
	span  trace.Span
	began time.Time
}

// slotState is where a handlerSlot is. The timer is set in every state but
// slotIdle and the terminal ones.
type slotState int

const (
	slotIdle      slotState = iota // no call; the timer is unset
	slotCooling                    // no call; the timer is still set, and unsets itself when it fires
	slotRunning                    // a call runs; the timer is set, due no later than its limit
	slotAbandoned                  // the running call was given up; the loop ends when it returns
	slotClosed                     // the loop ended
)

// handlerSlot watches the handler calls of one handler loop. Handlers run on
// the loop's goroutine: a goroutine per call, to walk away from a handler that
// ignores its context, cost a goroutine start and two switches per delivery
// (with a channel and a select) on the worker's busiest path. Instead the
// slot's timer checks on the loop's call, rarely: a call still running
// abandonAfter(timeout) after it began is abandoned. abandon settles its
// delivery as timed out and starts a new loop in the stuck one's place; the
// stuck goroutine ends when its handler returns, dropping the result. A hard
// stop abandons a running call at once and leaves its delivery unacked; no
// call starts after it.
type handlerSlot struct {
	timeout time.Duration
	hard    context.Context // a hard stop
	handler event.Handler
	// abandon is called, off the loop's goroutine, with a call the slot gave
	// up on and the error to settle it with.
	abandon func(c *handlerCall, err error)

	timer  *time.Timer
	unhook func() bool // stops the hard-stop hook

	mu    sync.Mutex
	state slotState
	cur   handlerCall // the running call; only the loop writes it, under mu
}

// abandonAfter is how long a handler may run before it is abandoned: its
// timeout, and a tenth of it (at most 1s) to return once its context is done,
// so a handler that does watch its context settles its own delivery.
func abandonAfter(timeout time.Duration) time.Duration {
	return timeout + min(timeout/10, time.Second)
}

func newSlot(timeout time.Duration, hard context.Context, h event.Handler, abandon func(*handlerCall, error)) *handlerSlot {
	s := &handlerSlot{timeout: timeout, hard: hard, handler: h, abandon: abandon}
	s.mu.Lock()
	// The timer is not reset per call. A call that finds it unset sets it
	// for its own limit; when it fires it aims at the call running then, and
	// stays unset if there is none. Whenever it is set, it is due no later
	// than the limit of any call that starts meanwhile, so no call is
	// abandoned late, and an idle worker has no timers running.
	s.timer = time.AfterFunc(time.Hour, s.check)
	s.timer.Stop()
	s.unhook = context.AfterFunc(hard, s.check)
	s.mu.Unlock()
	return s
}

// call runs c's handler with its deadline. It reports abandoned when the slot
// gave up on the call meanwhile: the delivery is the slot's to settle then.
func (s *handlerSlot) call(c *handlerCall) (abandoned bool, err error) {
	s.mu.Lock()
	// Checked under mu: a hard stop either comes first and no handler
	// starts, or finds the call running and abandons it.
	if err := s.hard.Err(); err != nil {
		s.mu.Unlock()
		return false, err
	}
	if s.state == slotIdle {
		s.timer.Reset(abandonAfter(s.timeout))
	}
	s.cur, s.state = *c, slotRunning
	s.mu.Unlock()
	ctx := newCallContext(c.ctx, c.began.Add(s.timeout))
	err = s.invoke(ctx, c.ev)
	timedOut := ctx.expired()
	ctx.end()
	s.mu.Lock()
	abandoned = s.state == slotAbandoned
	if !abandoned {
		s.state = slotCooling
	}
	s.cur = handlerCall{} // not kept until the next call: it holds the body
	s.mu.Unlock()
	if abandoned {
		return true, nil
	}
	if err != nil && timedOut && s.hard.Err() == nil {
		err = fmt.Errorf("handler timed out after %v: %w", s.timeout, err)
	}
	return false, err
}

// invoke calls the handler, turning a panic into an error.
func (s *handlerSlot) invoke(ctx context.Context, ev event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return s.handler.Handle(ctx, ev)
}

// check runs when the slot's timer fires and on a hard stop. It abandons a
// call past its limit (any call, on a hard stop), else aims the timer at the
// running call's limit, or leaves it unset when there is none.
func (s *handlerSlot) check() {
	s.mu.Lock()
	err := s.hard.Err() // non-nil: a hard stop, whoever called
	switch s.state {
	case slotAbandoned, slotClosed:
		s.mu.Unlock()
		return
	case slotIdle, slotCooling:
		if err == nil {
			s.state = slotIdle // the timer fired; the hard-stop hook leaves it be
		}
		s.mu.Unlock()
		return
	}
	if left := abandonAfter(s.timeout) - time.Since(s.cur.began); left > 0 && err == nil {
		s.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	s.state = slotAbandoned
	c := s.cur
	s.mu.Unlock()
	s.unhook()
	if err == nil {
		err = fmt.Errorf("handler timed out after %v (it ignored its context)", s.timeout)
	}
	s.abandon(&c, err)
}

// close ends the slot when its loop ends.
func (s *handlerSlot) close() {
	s.mu.Lock()
	s.state = slotClosed
	s.mu.Unlock()
	s.timer.Stop()
	s.unhook()
}
