package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/config"
)

// maxLineBytes is the longest line `publish` reads; a longer one is reported
// and skipped. RabbitMQ takes bodies far larger, but a line is held in memory
// while its event is in flight, PUBLISH_WINDOW of them at once.
const maxLineBytes = 16 << 20

// Errors of `publish`. Each makes the command exit with code 1.
var (
	// errEventsFailed: some lines were invalid or not confirmed; stderr says
	// which, by line number.
	errEventsFailed = errors.New("not every event was published")
	// errInterrupted: a signal stopped the reading; events already sent were
	// still given their time to be confirmed.
	errInterrupted = errors.New("interrupted")
	// errLineTooLong: a line over the limit, skipped.
	errLineTooLong = errors.New("line too long")
	// errBrokerUnreachable: an event waited its whole PUBLISH_TIMEOUT without
	// a broker connection, so the remaining events are not sent.
	errBrokerUnreachable = errors.New("no broker connection within PUBLISH_TIMEOUT")
)

// publish runs `publisher publish`: the events of file (stdin when empty) go to
// the broker, and stdout gets one summary line whatever happens.
func publish(ctx context.Context, cfg config.Publisher, p *amqp.Publisher, file string,
	stdin io.Reader, stdout, stderr io.Writer) error {
	in := stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		defer f.Close()
		in = f
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	stats, err := publishLines(ctx, p, in, stderr, publishOptions{
		window:  cfg.Window,
		timeout: cfg.Timeout,
		maxLine: maxLineBytes,
	})
	// Every publish has returned, so Stop has nothing to wait for but the
	// connection's close; the bound only guards against a hung socket.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	_ = p.Stop(stopCtx)
	fmt.Fprintf(stdout, "published=%d failed=%d\n", stats.published, stats.failed)
	return err
}

// sender is the part of *amqp.Publisher that publishLines uses.
type sender interface {
	Publish(ctx context.Context, ev event.Event) error
	Connected() bool
	Done() <-chan struct{}
	Err() error
}

type publishOptions struct {
	window  int           // events in flight at once
	timeout time.Duration // each event's confirm deadline, from when it is sent
	maxLine int           // longest line in bytes
}

type publishStats struct {
	published, failed int
}

// publishLines publishes every event of in, one JSON object per line, and
// reports each failure on stderr with its line number. It returns once every
// event sent has been confirmed or has failed.
//
// Events are sent as soon as a window slot is free, without waiting for the
// confirms of earlier ones; each gets opt.timeout from its own send, so a long
// file does not fail just for taking long.
func publishLines(ctx context.Context, s sender, in io.Reader, stderr io.Writer, opt publishOptions) (publishStats, error) {
	lines := make(chan line)
	quit := make(chan struct{})
	defer close(quit)
	// Reading happens on its own goroutine so that a signal is noticed even
	// while a terminal or pipe read blocks.
	go readLines(in, opt.maxLine, lines, quit)

	r := &report{w: stderr, s: s, timeout: opt.timeout}
	// Events in flight keep their deadlines when a signal arrives: they may be
	// just about to be confirmed, and abandoning them would only make duplicates.
	sendCtx := context.WithoutCancel(ctx)
	slots := make(chan struct{}, opt.window)
	var wg sync.WaitGroup
	var stop error
	lastRead := 0
loop:
	for {
		var l line
		var ok bool
		select {
		case l, ok = <-lines:
		case <-ctx.Done():
			stop = errInterrupted
			break loop
		}
		if ok {
			lastRead = l.n
		}
		switch {
		case !ok:
			break loop
		case errors.Is(l.err, errLineTooLong):
			r.fail(l.n, l.err)
			continue
		case l.err != nil:
			stop = fmt.Errorf("reading line %d: %w", l.n, l.err)
			break loop
		case len(bytes.TrimSpace(l.text)) == 0:
			continue
		}
		ev, err := parseEvent(l.text)
		if err != nil {
			r.fail(l.n, err)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			r.fail(l.n, fmt.Errorf("not sent: %w", errInterrupted))
			stop = errInterrupted
			break loop
		}
		if r.skip(l.n) {
			<-slots
			continue
		}
		n := l.n // not l: its text would stay in memory next to the event's copy
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(sendCtx, opt.timeout)
			err := s.Publish(pctx, ev)
			cancel()
			r.done(n, ev.ID, err)
			// Free the slot only now: the loop must see a halt that this
			// result caused before it sends the next event.
			<-slots
		}()
	}
	wg.Wait()

	stats := r.stats()
	switch {
	case r.fatal != nil:
		return stats, r.fatal
	case errors.Is(stop, errInterrupted):
		return stats, fmt.Errorf("%w: stopped reading after line %d", errInterrupted, lastRead)
	case stop != nil:
		return stats, stop
	case stats.failed > 0:
		return stats, fmt.Errorf("%w: %d failed", errEventsFailed, stats.failed)
	}
	return stats, nil
}

// parseEvent is event.ParseInput made strict about trailing data: ParseInput
// accepts `{"type":"a"}}` because its decoder stops after the first value.
func parseEvent(b []byte) (event.Event, error) {
	if !event.ValidJSON(b) {
		err := json.Unmarshal(b, new(json.RawMessage)) // for the reason
		return event.Event{}, fmt.Errorf("invalid JSON: %w", err)
	}
	return event.ParseInput(b)
}

// report counts outcomes and writes them to stderr; publish goroutines share it.
type report struct {
	w       io.Writer
	s       sender
	timeout time.Duration

	mu                sync.Mutex
	published, failed int
	halt              error // set once: the remaining events are not sent
	haltShown         bool
	fatal             error // the publisher stopped for good
}

func (r *report) fail(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	fmt.Fprintf(r.w, "line %d: %v\n", n, err)
}

// skip reports whether line n must not be sent because of an earlier halt,
// and if so counts it as failed, saying why once.
func (r *report) skip(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halt == nil {
		return false
	}
	r.failed++
	if !r.haltShown {
		r.haltShown = true
		fmt.Fprintf(r.w, "line %d: not sent, nor any later event: %v\n", n, r.halt)
	}
	return true
}

// done records the outcome of line n's publish. A fatal publisher error or a
// broker that stayed unreachable for a whole timeout halts the sending: every
// further event would fail the same way, after waiting for nothing.
func (r *report) done(n int, id string, err error) {
	if err == nil {
		r.mu.Lock()
		r.published++
		r.mu.Unlock()
		return
	}
	var halt, fatal error
	select {
	case <-r.s.Done():
		fatal = r.s.Err()
		if fatal == nil {
			fatal = amqp.ErrClosed
		}
		halt = fatal
	default:
		if errors.Is(err, context.DeadlineExceeded) && !r.s.Connected() {
			halt = fmt.Errorf("%w (%v)", errBrokerUnreachable, r.timeout)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	fmt.Fprintf(r.w, "line %d: event %s not published: %v\n", n, id, err)
	if halt != nil && r.halt == nil {
		r.halt = halt
	}
	if fatal != nil && r.fatal == nil {
		r.fatal = fatal
	}
}

func (r *report) stats() publishStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return publishStats{published: r.published, failed: r.failed}
}

// line is one line of input: its 1-based number and its text without the
// line break, or why it could not be read.
type line struct {
	n    int
	text []byte
	err  error
}

// readLines sends the lines of in to out until the end of in, a read error,
// or quit. A line over max bytes is sent as errLineTooLong and skipped.
func readLines(in io.Reader, max int, out chan<- line, quit <-chan struct{}) {
	defer close(out)
	lr := lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
	for {
		text, err := lr.next()
		if err == io.EOF {
			return
		}
		select {
		case out <- line{n: lr.n, text: text, err: err}:
		case <-quit:
			return
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return
		}
	}
}

// lineReader splits input into lines of at most max bytes. Unlike
// bufio.Scanner it keeps going after a line that is too long.
type lineReader struct {
	r   *bufio.Reader
	max int
	n   int // number of the line last read
}

// next returns the next line without its "\n" or "\r\n", in a new slice the
// caller may keep. It returns io.EOF at the end.
func (l *lineReader) next() ([]byte, error) {
	l.n++
	var text []byte
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			text = append(text, chunk...)
			// +2: the line break does not count.
			if len(text) > l.max+2 {
				tooLong, text = true, nil
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(text) == 0 && !tooLong:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		text = bytes.TrimSuffix(text, []byte("\n"))
		text = bytes.TrimSuffix(text, []byte("\r"))
		if tooLong || len(text) > l.max {
			return nil, fmt.Errorf("%w: longer than %d bytes; not published", errLineTooLong, l.max)
		}
		return text, nil
	}
}
