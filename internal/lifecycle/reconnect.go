package lifecycle

import (
	"time"

	"github.com/eventfleet/eventfleet/retry"
)

// HealthySession is how long a session must last for the next connect to
// start the backoff schedule afresh. A session that ends sooner counts as a
// failed attempt, so a connection that keeps dying right after it opens backs
// off as a refused one does.
const HealthySession = time.Minute

// Loop is a reconnect loop over sessions of type S (one connection each).
// Only Connect and Serve are required.
type Loop[S any] struct {
	// Backoff is the schedule between attempts.
	Backoff retry.Backoff
	// Addresses is how many addresses Connect goes through, moving to the
	// next after each failure: after a failure the next attempt goes at
	// once until this many failed in a row, then the loop backs off. So
	// each address of a list is tried once per round, and the schedule
	// counts rounds. 0 or 1: back off after every failure.
	Addresses int
	// Quit ends the loop: between attempts, and during a backoff.
	Quit <-chan struct{}
	// Connect opens session number gen (1, 2, …).
	Connect func(gen uint64) (S, error)
	// Fatal reports an error that retrying cannot fix, of Connect or of
	// a session that ended (Serve's): the loop returns it. Nil means every
	// error is retried.
	Fatal func(error) bool
	// Serve runs a session until it ends, tears it down, and returns why it
	// ended. attempt counts the failed attempts before it (0: none).
	Serve func(s S, gen uint64, attempt int) error
	// Failed is told of a Connect error that will be retried, and of a
	// session that ended (lost, with its gen), before the backoff. attempt
	// is 1 for the first failure in a row. Optional.
	Failed func(err error, lost bool, gen uint64, attempt int)
}

// Run runs the loop until Quit closes (it returns nil) or Connect fails
// fatally (it returns that error).
func (l Loop[S]) Run() error {
	var gen uint64
	// backoffs counts the waits since the last healthy session (Backoff's
	// n); untried the attempts left in this round of the addresses.
	backoffs, untried := 0, l.round()
	pause := func() bool {
		if untried--; untried > 0 {
			return l.quitting()
		}
		untried = l.round()
		backoffs++
		return l.sleep(backoffs - 1)
	}
	for attempt := 0; ; attempt++ {
		if l.quitting() {
			return nil
		}
		gen++
		s, err := l.Connect(gen)
		if err != nil {
			if l.Fatal != nil && l.Fatal(err) {
				return err
			}
			l.failed(err, false, gen, attempt+1)
			if pause() {
				return nil
			}
			continue
		}
		began := time.Now()
		cause := l.Serve(s, gen, attempt)
		if l.quitting() {
			return nil
		}
		if cause != nil && l.Fatal != nil && l.Fatal(cause) {
			return cause
		}
		if time.Since(began) > HealthySession {
			attempt, backoffs, untried = 0, 0, l.round()
		}
		l.failed(cause, true, gen, attempt+1)
		if pause() {
			return nil
		}
	}
}

// round is the number of attempts in a round: one per address.
func (l Loop[S]) round() int { return max(l.Addresses, 1) }

func (l Loop[S]) failed(err error, lost bool, gen uint64, attempt int) {
	if l.Failed != nil {
		l.Failed(err, lost, gen, attempt)
	}
}

func (l Loop[S]) quitting() bool {
	select {
	case <-l.Quit:
		return true
	default:
		return false
	}
}

// sleep backs off; it reports true when Quit closed meanwhile.
func (l Loop[S]) sleep(attempt int) bool {
	t := time.NewTimer(l.Backoff.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-l.Quit:
		return true
	}
}
