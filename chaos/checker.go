package chaos

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
)

// Checker is the loss checker, in the style of the RabbitMQ team's Jepsen
// workload: each publish is ok (confirmed: it must arrive), failed (the
// broker refused it) or indeterminate (no answer: a timeout, a lost
// connection; it may or may not arrive). Handlers record what they handled,
// a reader of the dead-letter queue what died. Safe for concurrent use.
type Checker struct {
	mu            sync.Mutex
	sent          int                 // publish attempts
	confirmed     map[string]struct{} // ids the broker confirmed
	failed        int                 // publishes that returned an error (not promised)
	indeterminate map[string]struct{} // of those, ids with no answer either way
	handled       map[string]int      // id → times handled
	dead          map[string]int      // id → times dead-lettered
	start         time.Time
}

// NewChecker returns an empty Checker.
func NewChecker() *Checker {
	return &Checker{
		confirmed:     map[string]struct{}{},
		indeterminate: map[string]struct{}{},
		handled:       map[string]int{},
		dead:          map[string]int{},
		start:         time.Now(),
	}
}

// Published records the outcome of one publish of id: err == nil means the
// broker confirmed it, so it must arrive. An error is indeterminate unless
// the broker answered it (a nack, a return, a refusal).
func (c *Checker) Published(id string, err error) {
	if err != nil && !refused(err) {
		c.Indeterminate(id)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent++
	if err == nil {
		c.confirmed[id] = struct{}{}
	} else {
		c.failed++
	}
}

// Indeterminate records a publish of id that got no answer: it counts as
// failed (nothing was promised), and apart, so that a report says how many
// such events arrived all the same.
func (c *Checker) Indeterminate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent++
	c.failed++
	c.indeterminate[id] = struct{}{}
}

// refused reports an error the broker answered: the event was not taken.
func refused(err error) bool {
	return errors.Is(err, amqp.ErrNacked) || errors.Is(err, amqp.ErrReturned) ||
		errors.Is(err, amqp.ErrUnroutedRefused) || amqp.IsPublishRefusal(err)
}

// Handled records that a handler successfully handled id.
func (c *Checker) Handled(id string) {
	c.mu.Lock()
	c.handled[id]++
	c.mu.Unlock()
}

// Dead records that id was found in a dead-letter queue.
func (c *Checker) Dead(id string) {
	c.mu.Lock()
	c.dead[id]++
	c.mu.Unlock()
}

// Settled reports whether every confirmed id was handled or dead-lettered.
func (c *Checker) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.confirmed {
		if c.handled[id] == 0 && c.dead[id] == 0 {
			return false
		}
	}
	return true
}

// Report is the checker's verdict.
type Report struct {
	Sent, Confirmed, Failed int
	// Indeterminate publishes (part of Failed) had no answer; Arrived of
	// them were handled or dead-lettered all the same.
	Indeterminate, Arrived int
	Handled, DeadLettered  int // distinct ids
	Duplicates             int // deliveries beyond the first, handled or dead
	Lost, Phantoms         []string
	Elapsed                time.Duration
}

// OK reports the promise held: nothing confirmed lost, nothing unknown handled.
func (r Report) OK() bool { return len(r.Lost) == 0 && len(r.Phantoms) == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("sent=%d confirmed=%d failed=%d indeterminate=%d (arrived %d) handled=%d dead=%d duplicates=%d lost=%d phantoms=%d elapsed=%v",
		r.Sent, r.Confirmed, r.Failed, r.Indeterminate, r.Arrived, r.Handled, r.DeadLettered, r.Duplicates, len(r.Lost), len(r.Phantoms), r.Elapsed.Round(time.Millisecond))
	if len(r.Lost) > 0 {
		s += " lost e.g. " + strings.Join(r.Lost[:min(5, len(r.Lost))], ",")
	}
	if len(r.Phantoms) > 0 {
		s += " phantoms e.g. " + strings.Join(r.Phantoms[:min(5, len(r.Phantoms))], ",")
	}
	return s
}

// Report computes the verdict. Ids handled or dead-lettered that were never
// published at all (not even attempted) are phantoms; publishes that failed
// may still have reached the broker, so their ids are not phantoms.
func (c *Checker) Report(knownIDs func(string) bool) Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Sent: c.sent, Confirmed: len(c.confirmed), Failed: c.failed, Indeterminate: len(c.indeterminate), Elapsed: time.Since(c.start)}
	for id := range c.indeterminate {
		if c.handled[id] > 0 || c.dead[id] > 0 {
			r.Arrived++
		}
	}
	for id := range c.confirmed {
		if c.handled[id] == 0 && c.dead[id] == 0 {
			r.Lost = append(r.Lost, id)
		}
	}
	seen := map[string]int{}
	for id, n := range c.handled {
		seen[id] += n
		r.Handled++
	}
	for id, n := range c.dead {
		seen[id] += n
		r.DeadLettered++
	}
	for id, n := range seen {
		r.Duplicates += n - 1
		if knownIDs != nil && !knownIDs(id) {
			r.Phantoms = append(r.Phantoms, id)
		}
	}
	slices.Sort(r.Lost)
	slices.Sort(r.Phantoms)
	return r
}
