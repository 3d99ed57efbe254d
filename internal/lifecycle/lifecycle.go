package lifecycle

import (
	"context"
	"errors"
	"sync"
)

// State is where a Lifecycle is.
type State int32

// The states, in the only order they are entered (Finish goes straight to
// Stopped from any of them: after Stop before Start, or on a fatal error).
const (
	Idle     State = iota // made, not started
	Running               // started; taking work
	Stopping              // Stop was called: no new work, work in flight may finish
	Halting               // work in flight is being abandoned
	Stopped               // ended: Done is closed, Err says why
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Running:
		return "running"
	case Stopping:
		return "stopping"
	case Halting:
		return "halting"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Errors of Start.
var (
	ErrStarted = errors.New("already started")
	ErrStopped = errors.New("stopped")
)

// Lifecycle is the start/stop state of one owner. The zero value is not
// usable; call New.
type Lifecycle struct {
	mu       sync.Mutex
	state    State
	stopping chan struct{} // closed on leaving Running (or Idle)
	halt     context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	err      error          // written before done closes
	calls    sync.WaitGroup // calls admitted by Enter
}

// New returns an Idle Lifecycle.
func New() *Lifecycle {
	halt, cancel := context.WithCancel(context.Background())
	return &Lifecycle{
		stopping: make(chan struct{}),
		halt:     halt,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
}

// State returns the current state.
func (l *Lifecycle) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Start moves Idle to Running. It fails with ErrStarted when already started
// and with ErrStopped once Stop was called.
func (l *Lifecycle) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case Idle:
		l.state = Running
		return nil
	case Running:
		return ErrStarted
	default:
		return ErrStopped
	}
}

// Stop begins stopping: no new work (Stopping closes, Enter refuses). It
// reports whether the owner was ever started; one that was not is Stopped at
// once, with a nil error, since nothing runs that could finish it.
func (l *Lifecycle) Stop() (started bool) {
	l.mu.Lock()
	switch l.state {
	case Idle:
		l.state = Stopping
		close(l.stopping)
		l.mu.Unlock()
		l.Finish(nil)
		return false
	case Running:
		l.state = Stopping
		close(l.stopping)
	}
	l.mu.Unlock()
	return true
}

// Stopping is closed once Stop was called (or the owner failed).
func (l *Lifecycle) Stopping() <-chan struct{} { return l.stopping }

// IsStopping reports whether Stopping is closed.
func (l *Lifecycle) IsStopping() bool {
	select {
	case <-l.stopping:
		return true
	default:
		return false
	}
}

// Halt abandons work in flight: HaltContext ends and Halted closes. It
// implies Stop.
func (l *Lifecycle) Halt() {
	l.Stop()
	l.mu.Lock()
	if l.state == Stopping {
		l.state = Halting
	}
	l.mu.Unlock()
	l.cancel()
}

// Halted is closed once Halt was called.
func (l *Lifecycle) Halted() <-chan struct{} { return l.halt.Done() }

// HaltContext ends when Halt is called. Contexts of work the owner runs
// derive from it, so a hard stop reaches them.
func (l *Lifecycle) HaltContext() context.Context { return l.halt }

// Finish ends the lifecycle with err (nil after a Stop, else why the owner
// could not go on): it stops and halts what is left and closes Done. Only the
// first call counts.
//
// Err is recorded, and Done closed, in the same step that refuses new calls
// and before the halt: a call refused by Enter, or woken by Halted, asks Err
// why, and must hear the fatal error rather than nothing.
func (l *Lifecycle) Finish(err error) {
	l.mu.Lock()
	if l.state == Stopped {
		l.mu.Unlock()
		return
	}
	if l.state == Idle || l.state == Running {
		close(l.stopping)
	}
	l.state = Stopped
	l.err = err
	close(l.done)
	l.mu.Unlock()
	l.cancel()
}

// Done is closed once Finish was called.
func (l *Lifecycle) Done() <-chan struct{} { return l.done }

// Err is the error Finish recorded; nil until Done is closed.
func (l *Lifecycle) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Enter admits one call (a publish) unless Stop was called; a nil error must
// be paired with Leave. Stop's Drain waits for admitted calls.
func (l *Lifecycle) Enter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Running && l.state != Idle {
		return ErrStopped
	}
	// Added under mu, so no Add can race with Drain's Wait: Drain waits
	// only after Stop, which Enter observes under the same lock.
	l.calls.Add(1)
	return nil
}

// Leave ends a call that Enter admitted.
func (l *Lifecycle) Leave() { l.calls.Done() }

// Drain waits, after Stop, for the calls Enter admitted to Leave, or for ctx
// to end (it returns ctx.Err() then; the calls go on).
func (l *Lifecycle) Drain(ctx context.Context) error {
	idle := make(chan struct{})
	go func() { l.calls.Wait(); close(idle) }()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopAndWait is the whole Stop of an owner whose background work ends by
// itself once Stopping closes: Stop, wait for Done until ctx ends (then
// ctx.Err() is returned), Halt what is left and wait for Done. Safe twice
// and before Start.
func (l *Lifecycle) StopAndWait(ctx context.Context) error {
	started := l.Stop()
	var err error
	if started {
		select {
		case <-l.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	l.Halt()
	if started {
		<-l.done
	}
	return err
}
