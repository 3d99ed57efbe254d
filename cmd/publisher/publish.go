package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/retry"
)

// maxLineBytes is the longest line `publish` reads; a longer one is reported
// and skipped. RabbitMQ takes bodies far larger, but a line is held in memory
// while its event is in flight, PUBLISH_WINDOW of them at once.
const maxLineBytes = 16 << 20

// publishBackoff is the reconnect schedule of `publish`: a batch run should
// notice the broker's return within seconds, where the library's default
// (up to 30 s) spares a broker that a fleet of servers is waiting for.
var publishBackoff = retry.Backoff{Max: 5 * time.Second}

// nackBackoff spaces the retries of a nacked event.
var nackBackoff = retry.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}

// Errors of `publish`. Each makes the command exit with code 1.
var (
	// errEventsFailed: some lines were invalid or not confirmed; stderr says
	// which, by line number.
	errEventsFailed = errors.New("not every event was published")
	// errInterrupted: a signal stopped the sending; events already sent were
	// still given their time to be confirmed.
	errInterrupted = errors.New("interrupted")
	// errBrokerUnreachable: no confirm for PUBLISH_TIMEOUT, and no broker
	// connection either; the remaining events are not sent.
	errBrokerUnreachable = errors.New("no broker connection within PUBLISH_TIMEOUT")
	// errNoProgress: connected, yet no confirm for PUBLISH_TIMEOUT.
	errNoProgress = errors.New("no confirm within PUBLISH_TIMEOUT")
	// errDeadline: PUBLISH_DEADLINE ran out.
	errDeadline = errors.New("PUBLISH_DEADLINE reached")
	// errAbandoned: a second signal gave up on the events in flight.
	errAbandoned = errors.New("interrupted again: gave up on the events in flight")
)

// publish runs `publisher publish`: the events of file (stdin when empty) go to
// the broker, those not confirmed to the failed file (when not empty), and
// stdout gets one summary line whatever happens.
func publish(ctx context.Context, cfg config.Publisher, p *amqp.Publisher, file, failedPath string,
	stdin io.Reader, stdout, stderr io.Writer) error {
	in := stdin
	inFile, _ := stdin.(*os.File)
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		defer f.Close()
		in, inFile = f, f
	}
	var failed *failedLog
	if failedPath != "" {
		var err error
		if failed, err = createFailed(failedPath, inFile); err != nil {
			return err
		}
	}
	abandon, stopSignals := secondSignal()
	defer stopSignals()
	if err := p.Start(ctx); err != nil {
		_, _ = failed.close()
		return err
	}
	stats, err := publishLines(ctx, p, in, stderr, publishOptions{
		window:   cfg.Window,
		timeout:  cfg.ProgressTimeout,
		deadline: cfg.Deadline,
		maxLine:  maxLineBytes,
		failed:   failed,
		// Reading the rest of a regular file after a signal is quick and
		// makes the failed file the whole of what is left to send; a pipe
		// or terminal may never end.
		readRest: failed != nil && isRegular(inFile),
		abandon:  abandon,
	})
	// Every publish has returned, so Stop has nothing to wait for but the
	// connection's close; the bound only guards against a hung socket.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	_ = p.Stop(stopCtx)
	if failed != nil {
		n, ferr := failed.close()
		switch {
		case ferr != nil:
			err = errors.Join(err, ferr)
		case n > 0:
			fmt.Fprintf(stderr, "%d events not confirmed are in %s; send them again (same ids) with: publisher publish --file %s\n",
				n, failedPath, failedPath)
		}
	}
	fmt.Fprintf(stdout, "published=%d failed=%d\n", stats.published, stats.failed)
	return err
}

func isRegular(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// secondSignal returns a channel closed at the second SIGINT or SIGTERM. The
// first one is main's: it stops the sending. Being notified keeps the
// default action (exit at once, the failed file unwritten) away until the
// second one has been handled; a third one then kills as usual.
func secondSignal() (<-chan struct{}, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	abandon := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer signal.Stop(sigs)
		for n := 0; n < 2; n++ {
			select {
			case <-sigs:
			case <-quit:
				return
			}
		}
		close(abandon)
	}()
	var once sync.Once
	return abandon, func() { once.Do(func() { close(quit) }) }
}

// sender is the part of *amqp.Publisher that publishLines uses.
type sender interface {
	Publish(ctx context.Context, ev event.Event) error
	Connected() bool
	LastError() error
	Done() <-chan struct{}
	Err() error
}

type publishOptions struct {
	window   int           // events in flight at once
	timeout  time.Duration // give up after this long without a confirm while events wait
	deadline time.Duration // give up after this long in all; 0: never
	maxLine  int           // longest line in bytes
	failed   *failedLog    // where unconfirmed events go; nil: nowhere
	readRest bool          // after a signal, read the rest of the input into failed
	abandon  <-chan struct{}
}

type publishStats struct {
	published, failed int
}

// publishLines publishes every event of in, one JSON object per line, and
// reports each failure on stderr with its line number. It returns once every
// event sent has been confirmed or has failed.
//
// opt.window callers of Publish take the events in turn, so up to that many
// are in flight at once, without waiting for the confirms of earlier ones.
// An event has no deadline of its own: it waits through reconnects (the
// Publisher sends it again, with the same id, on the next connection) and
// is retried after a nack, until the run gives up:
// opt.timeout without any confirm while events wait, opt.deadline, a fatal
// publisher error, or a second signal. Then the events in flight fail and the
// rest are not sent; all of them go to opt.failed.
func publishLines(ctx context.Context, s sender, in io.Reader, stderr io.Writer, opt publishOptions) (publishStats, error) {
	lines := make(chan line)
	quit := make(chan struct{})
	defer close(quit)
	// Reading happens on its own goroutine so that a signal is noticed even
	// while a terminal or pipe read blocks.
	go readLines(in, opt.maxLine, lines, quit)

	// run ends when the run gives up; its cause says why. A signal does not
	// end it: events in flight may be just about to be confirmed, and
	// abandoning them would only make duplicates.
	run, giveUp := context.WithCancelCause(context.WithoutCancel(ctx))
	defer giveUp(nil)
	watch := newStallWatch(opt.timeout, func() {
		if s.Connected() {
			giveUp(fmt.Errorf("%w (%v)", errNoProgress, opt.timeout))
		} else {
			giveUp(unreachable(s, opt.timeout))
		}
	})
	defer watch.stop()
	if opt.deadline > 0 {
		t := time.AfterFunc(opt.deadline, func() { giveUp(fmt.Errorf("%w (%v)", errDeadline, opt.deadline)) })
		defer t.Stop()
	}
	// stopped ends the run once the publisher has stopped for good: every
	// further event would fail the same way.
	stopped := func() {
		err := s.Err()
		if err == nil {
			err = amqp.ErrClosed
		}
		giveUp(fatalError{err})
	}
	go func() {
		select {
		case <-s.Done():
			stopped()
		case <-opt.abandon:
			giveUp(errAbandoned)
		case <-run.Done():
		}
	}()

	r := &report{w: stderr, log: opt.failed}
	// window callers of Publish: the Publisher's own window is as large,
	// so they keep it full without a goroutine per event.
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range opt.window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				watch.begin()
				err := send(run, s, j.ev, opt.timeout)
				watch.end(err == nil)
				if err != nil {
					select {
					case <-s.Done():
						stopped()
					default:
					}
				}
				// Settled before this caller takes the next job: the loop
				// must see a give-up that this result caused before it
				// hands out another event.
				r.done(j.n, j.seq, &j.ev, err)
			}
		}()
	}
	var stop error
	signaled := ctx.Done()
	interrupted := false
	lastRead, lastSent, seq := 0, 0, 0
	// interrupt notes the first signal; it reports whether to go on reading.
	interrupt := func() bool {
		interrupted, signaled = true, nil
		if n := watch.inFlight(); n > 0 {
			r.note(fmt.Sprintf("interrupted: stopped sending; waiting for the confirms of %d events in flight "+
				"(at most PUBLISH_TIMEOUT without one); interrupt again to give up on them", n))
		} else {
			r.note("interrupted: stopped sending")
		}
		return opt.readRest
	}
loop:
	for {
		var l line
		var ok bool
		select {
		case l, ok = <-lines:
		case <-signaled:
			if interrupt() {
				continue
			}
			break loop
		}
		if ok {
			lastRead = l.n
		}
		switch {
		case !ok:
			break loop
		case errors.Is(l.err, errLineTooLong):
			r.invalid(l.n, l.err)
			continue
		case l.err != nil:
			stop = fmt.Errorf("reading line %d: %w", l.n, l.err)
			break loop
		case len(bytes.TrimSpace(l.text)) == 0:
			continue
		}
		j := job{n: l.n, seq: seq} // not l: its text would stay in memory next to the event's copy
		var err error
		if j.ev, err = event.ParseInput(l.text); err != nil {
			r.invalid(l.n, err)
			continue
		}
		seq++
		if interrupted || run.Err() != nil {
			r.unsent(j.n, j.seq, &j.ev, why(interrupted, run))
			continue
		}
		select {
		case jobs <- j:
		case <-signaled:
			r.unsent(j.n, j.seq, &j.ev, why(true, run))
			if interrupt() {
				continue
			}
			break loop
		case <-run.Done():
			r.unsent(j.n, j.seq, &j.ev, why(false, run))
			continue
		}
		lastSent = j.n
	}
	close(jobs)
	wg.Wait()

	stats := r.stats()
	cause := context.Cause(run)
	var fatal fatalError
	switch {
	case errors.As(cause, &fatal):
		return stats, fatal.error
	case interrupted && opt.readRest:
		return stats, fmt.Errorf("%w: stopped sending after line %d", errInterrupted, lastSent)
	case interrupted:
		return stats, fmt.Errorf("%w: stopped reading after line %d", errInterrupted, lastRead)
	case stop != nil:
		return stats, stop
	case stats.failed > 0 && cause != nil:
		return stats, fmt.Errorf("%w: %d failed; gave up: %w", errEventsFailed, stats.failed, cause)
	case stats.failed > 0:
		return stats, fmt.Errorf("%w: %d failed", errEventsFailed, stats.failed)
	}
	return stats, nil
}

// job is one event for a caller: line n, event number seq in input order.
type job struct {
	n, seq int
	ev     event.Event
}

// unreachable is errBrokerUnreachable with why the last connect failed
// (a handshake timeout, a refused connection), if the publisher knows.
func unreachable(s sender, timeout time.Duration) error {
	if last := s.LastError(); last != nil {
		return fmt.Errorf("%w (%v): %w", errBrokerUnreachable, timeout, last)
	}
	return fmt.Errorf("%w (%v)", errBrokerUnreachable, timeout)
}

// fatalError is why the publisher stopped for good (amqp.ErrTopologyMismatch…).
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// why is the reason an event is not sent.
func why(interrupted bool, run context.Context) error {
	if err := context.Cause(run); err != nil {
		return err
	}
	if interrupted {
		return errInterrupted
	}
	return nil
}

// send publishes ev until it is confirmed or the run gives up. The Publisher
// itself waits for a connection and sends it again after a connection loss;
// a nack (the broker in trouble, or a queue full with reject-publish) is
// retried here, with the same id, for up to timeout from the first one.
func send(run context.Context, s sender, ev event.Event, timeout time.Duration) error {
	var nacked time.Time
	for attempt := 0; ; attempt++ {
		err := s.Publish(run, ev)
		if !errors.Is(err, amqp.ErrNacked) {
			return err
		}
		if attempt == 0 {
			nacked = time.Now()
		} else if time.Since(nacked) >= timeout {
			return fmt.Errorf("%w, again and again for PUBLISH_TIMEOUT (%v)", err, timeout)
		}
		if nackBackoff.Sleep(run, attempt) != nil {
			return err
		}
	}
}

// report counts outcomes, writes them to stderr and settles each event in
// the failed log; publish goroutines share it.
type report struct {
	w   io.Writer
	log *failedLog

	mu                sync.Mutex
	published, failed int
	haltShown         bool
}

// note writes a line to stderr between the publish goroutines' lines.
func (r *report) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.w, s)
}

// invalid reports a line that is not an event; it cannot be sent again as
// it is, so it stays out of the failed log.
func (r *report) invalid(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	fmt.Fprintf(r.w, "line %d: %v\n", n, err)
}

// unsent counts event number seq (line n) as failed without sending it,
// saying why once.
func (r *report) unsent(n, seq int, ev *event.Event, why error) {
	r.mu.Lock()
	r.failed++
	if !r.haltShown {
		r.haltShown = true
		fmt.Fprintf(r.w, "line %d: not sent, nor any later event: %v\n", n, why)
	}
	r.mu.Unlock()
	r.log.settle(seq, ev)
}

// done records the outcome of the publish of event number seq (line n).
func (r *report) done(n, seq int, ev *event.Event, err error) {
	r.mu.Lock()
	if err == nil {
		r.published++
	} else {
		r.failed++
		fmt.Fprintf(r.w, "line %d: event %s not published: %v\n", n, ev.ID, err)
	}
	r.mu.Unlock()
	if err == nil {
		ev = nil
	}
	r.log.settle(seq, ev)
}

func (r *report) stats() publishStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return publishStats{published: r.published, failed: r.failed}
}
