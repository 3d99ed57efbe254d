package main

import (
	"sync"
	"time"
)

// stallWatch calls stalled when no event has been confirmed for timeout
// while events were outstanding (waiting for a connection, a confirm, or a
// retry). Time with nothing outstanding (a slow stdin) does not count, and
// one confirm restarts the clock: a long run, or one event that waits long
// while others get through, is not a stall.
type stallWatch struct {
	timeout time.Duration
	stalled func()

	mu          sync.Mutex
	timer       *time.Timer
	outstanding int
	since       time.Time // last confirm, or when outstanding became non-zero
	fired       bool
}

func newStallWatch(timeout time.Duration, stalled func()) *stallWatch {
	w := &stallWatch{timeout: timeout, stalled: stalled}
	w.timer = time.AfterFunc(timeout, w.check)
	w.timer.Stop()
	return w
}

// begin counts an event as outstanding.
func (w *stallWatch) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.outstanding == 0 {
		w.since = time.Now()
		w.timer.Reset(w.timeout)
	}
	w.outstanding++
}

// end counts an event as settled; confirmed is progress.
func (w *stallWatch) end(confirmed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outstanding--
	if confirmed {
		// Cheaper than resetting the timer on every confirm: check
		// re-arms it for the time that is left.
		w.since = time.Now()
	}
}

// inFlight returns the number of outstanding events.
func (w *stallWatch) inFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outstanding
}

func (w *stallWatch) check() {
	w.mu.Lock()
	if w.outstanding == 0 || w.fired {
		w.mu.Unlock()
		return
	}
	if left := w.timeout - time.Since(w.since); left > 0 {
		w.timer.Reset(left)
		w.mu.Unlock()
		return
	}
	w.fired = true
	w.mu.Unlock()
	w.stalled()
}

func (w *stallWatch) stop() { w.timer.Stop() }
