package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/eventfleet/eventfleet/event"
)

// errFailedFile: the --failed file cannot be the events file itself.
var errFailedFile = errors.New("--failed must not be the events file")

// failedLog writes the events that were not confirmed to the --failed file,
// one event.Input per line with the id each was published under, in input
// order, so that `publisher publish --file` sends exactly those again and
// receivers can deduplicate. Events finish out of order (up to
// PUBLISH_WINDOW are in flight), so an event waits in held until every
// earlier one has its fate. A nil *failedLog records nothing.
type failedLog struct {
	path string
	f    *os.File

	mu      sync.Mutex
	w       *bufio.Writer
	next    int                  // sequence number of the next event to settle
	held    map[int]*event.Event // settled out of order; nil: confirmed
	written int
	err     error // the first write error
}

// createFailed creates (or truncates) path before anything is sent, so that
// an unwritable path fails the run at once. in is the events file, if any.
func createFailed(path string, in *os.File) (*failedLog, error) {
	if in != nil {
		if a, err := in.Stat(); err == nil {
			if b, err := os.Stat(path); err == nil && os.SameFile(a, b) {
				return nil, fmt.Errorf("%w (%s): it would be emptied before it is read", errFailedFile, path)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--failed file: %w; nothing was published", err)
	}
	return &failedLog{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10), held: map[int]*event.Event{}}, nil
}

// settle records the fate of event number seq (0-based, in input order):
// ev is the event that was not confirmed, nil when it was.
func (l *failedLog) settle(seq int, ev *event.Event) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held[seq] = ev
	for {
		ev, ok := l.held[l.next]
		if !ok {
			return
		}
		delete(l.held, l.next)
		l.next++
		if ev != nil && l.err == nil {
			l.err = l.write(ev)
		}
	}
}

// write appends ev as one line. The data is written as it was read (not
// re-encoded), so the event sent again has the very same body.
func (l *failedLog) write(ev *event.Event) error {
	b := append(make([]byte, 0, 64+len(ev.Data)), `{"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, ev.Type)
	if ev.AggregateID != "" {
		b = append(b, `,"aggregate_id":`...)
		b = appendString(b, ev.AggregateID)
	}
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	b = append(b, "}\n"...)
	if _, err := l.w.Write(b); err != nil {
		return err
	}
	l.written++
	return nil
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// close writes what is buffered to disk and reports how many events the
// file holds, or the first error.
func (l *failedLog) close() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	if len(l.held) > 0 && err == nil {
		// A bug, not an outage: every event is settled before close.
		err = fmt.Errorf("%d events were never settled", len(l.held))
	}
	for _, e := range []error{l.w.Flush(), l.f.Sync(), l.f.Close()} {
		if err == nil {
			err = e
		}
	}
	if err != nil {
		return l.written, fmt.Errorf("writing --failed file %s: %w", l.path, err)
	}
	return l.written, nil
}
