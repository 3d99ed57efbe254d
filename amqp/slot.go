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

// handlerSlot watches the handler calls of one handler loop. Handlers run on
// the loop's goroutine: a goroutine per call, to walk away from a handler that
// ignores its context, cost a goroutine start and two switches per delivery
// (with a channel and a select) on the worker's busiest path. Instead the
// slot's timer checks on the loop's call, rarely: a call still running
// abandonAfter(HandlerTimeout) after it began is abandoned. Its delivery is
// settled as timed out, a new loop takes the stuck one's place, and the stuck
// goroutine ends when its handler returns, dropping the result. A hard stop
// abandons a running call at once and leaves its delivery unacked; no call
// starts after it.
type handlerSlot struct {
	w      *Worker
	timer  *time.Timer
	unhook func() bool // stops the hard-stop hook

	mu        sync.Mutex
	running   bool
	armed     bool // the timer is set; an idle slot leaves it unset
	abandoned bool
	closed    bool
	cur       handlerCall // the running call; only the loop writes it, under mu
}

// abandonAfter is how long a handler may run before it is abandoned: its
// timeout, and a tenth of it (at most 1s) to return once its context is done,
// so a handler that does watch its context settles its own delivery.
func abandonAfter(timeout time.Duration) time.Duration {
	return timeout + min(timeout/10, time.Second)
}

func (w *Worker) newSlot() *handlerSlot {
	s := &handlerSlot{w: w}
	s.mu.Lock()
	// The timer is not reset per call. A call that finds it unset sets it
	// for its own limit; when it fires it aims at the call running then, and
	// stays unset if there is none. Whenever it is set, it is due no later
	// than the limit of any call that starts meanwhile, so no call is
	// abandoned late, and an idle worker has no timers running.
	s.timer = time.AfterFunc(time.Hour, s.check)
	s.timer.Stop()
	s.unhook = context.AfterFunc(w.hardStop(), s.check)
	s.mu.Unlock()
	return s
}

// call runs c's handler with its deadline. It reports abandoned when the slot
// gave up on the call meanwhile: the delivery is the slot's to settle then.
func (s *handlerSlot) call(c *handlerCall) (abandoned bool, err error) {
	w := s.w
	s.mu.Lock()
	// Checked under mu: a hard stop either comes first and no handler
	// starts, or finds the call running and abandons it.
	if err := w.hardStop().Err(); err != nil {
		s.mu.Unlock()
		return false, err
	}
	s.cur, s.running = *c, true
	if !s.armed {
		s.armed = true
		s.timer.Reset(abandonAfter(w.cfg.HandlerTimeout))
	}
	s.mu.Unlock()
	ctx, cancel := context.WithDeadline(c.ctx, c.began.Add(w.cfg.HandlerTimeout))
	err = w.invoke(ctx, c.ev)
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	s.mu.Lock()
	abandoned = s.abandoned
	// Not kept until the next call: it holds the body.
	s.cur, s.running = handlerCall{}, false
	s.mu.Unlock()
	if abandoned {
		return true, nil
	}
	if err != nil && timedOut && w.hardStop().Err() == nil {
		err = fmt.Errorf("handler timed out after %v: %w", w.cfg.HandlerTimeout, err)
	}
	return false, err
}

// invoke calls the handler, turning a panic into an error.
func (w *Worker) invoke(ctx context.Context, ev event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return w.handler.Handle(ctx, ev)
}

// check runs when the slot's timer fires and on a hard stop. It abandons a
// call past its limit (any call, on a hard stop), else aims the timer at the
// running call's limit, or leaves it unset when there is none.
func (s *handlerSlot) check() {
	w := s.w
	limit := abandonAfter(w.cfg.HandlerTimeout)
	s.mu.Lock()
	if s.closed || s.abandoned {
		s.mu.Unlock()
		return
	}
	err := w.hardStop().Err() // non-nil: a hard stop, whoever called
	if !s.running {
		if err == nil {
			s.armed = false // the timer fired; the hard-stop hook leaves it be
		}
		s.mu.Unlock()
		return
	}
	if left := limit - time.Since(s.cur.began); left > 0 && err == nil {
		s.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	s.abandoned = true
	c := s.cur
	s.mu.Unlock()
	s.unhook()

	if err == nil {
		err = fmt.Errorf("handler timed out after %v (it ignored its context)", w.cfg.HandlerTimeout)
	}
	w.conclude(&c, err)
	w.m.InFlight(-1)
	w.inflight.Done() // added by serve
	// The new loop takes over the stuck one's count in w.loops (no Add: Stop
	// may be waiting on it already), only now, so that the Worker does not
	// finish while the delivery is being settled. After Stop it finds
	// w.jobs closed and ends at once.
	go w.handleLoop()
}

// close ends the slot when its loop ends.
func (s *handlerSlot) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.timer.Stop()
	s.unhook()
}
