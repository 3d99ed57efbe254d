package eventlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// Line is one written line. Its JSON form is the output contract (see the
// package documentation).
type Line struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id"`
	Source      string          `json:"source,omitempty"`
	Time        time.Time       `json:"time,omitzero"`
	Attempt     int             `json:"attempt"`
	Data        json.RawMessage `json:"data"`
}

// Handler writes events as JSON lines. It is an event.Handler, safe for
// concurrent use.
type Handler struct {
	w io.Writer

	mu sync.Mutex
	// writing: a Write to w is under way (by a Handle call or drain); lines
	// that come meanwhile join next, for drain to write.
	writing bool
	next    *batch
}

// batch is lines that go out in one Write. Lines join it under Handler.mu
// while it is next; then only drain touches it until it closes done.
type batch struct {
	buf  []byte
	done chan struct{}
	err  error
}

var _ event.Handler = (*Handler)(nil)

// New returns a Handler that writes to w.
func New(w io.Writer) *Handler { return &Handler{w: w} }

// buffers keep the encoding buffers of lines and batches between calls.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxKept is the largest buffer kept for reuse: one huge event must not pin
// its buffer's memory.
const maxKept = 64 << 10

func recycle(p []byte) {
	if cap(p) <= maxKept {
		buffers.Put(bytes.NewBuffer(p[:0]))
	}
}

// Handle writes ev as one line and returns once the line is written, so the
// event is acked only after its line is out. When no Write is under way the
// caller writes its line itself; lines that come while one is under way go
// out together in the next Write, whole and in the order they came. An event
// whose Data is not JSON cannot be written as a line and fails permanently; a
// failed write is retryable, for every event whose line it held.
func (h *Handler) Handle(_ context.Context, ev event.Event) error {
	line := Line{
		ID:          ev.ID,
		Type:        ev.Type,
		AggregateID: ev.AggregateID,
		Source:      ev.Source,
		Time:        showable(ev.Time),
		Attempt:     ev.Attempt,
		Data:        ev.Data,
	}
	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxKept {
			buffers.Put(buf)
		}
	}()
	buf.Reset()
	// Data is compacted, so a pretty-printed document stays on its line.
	if err := appendLine(buf, &line); err != nil {
		return retry.Permanent(fmt.Errorf("eventlog: event %q: %w", ev.ID, err))
	}

	h.mu.Lock()
	if !h.writing {
		h.writing = true
		h.mu.Unlock()
		_, err := h.w.Write(buf.Bytes())
		h.mu.Lock()
		if h.next != nil {
			// Lines came during the Write: a goroutine writes them (and
			// whatever comes during that), so this event's ack does not
			// wait for theirs.
			go h.drain()
		} else {
			h.writing = false
		}
		h.mu.Unlock()
		if err != nil {
			return fmt.Errorf("eventlog: write event %q: %w", ev.ID, err)
		}
		return nil
	}
	b := h.next
	if b == nil {
		b = &batch{buf: buffers.Get().(*bytes.Buffer).Bytes()[:0], done: make(chan struct{})}
		h.next = b
	}
	b.buf = append(b.buf, buf.Bytes()...)
	h.mu.Unlock()
	<-b.done
	if b.err != nil {
		return fmt.Errorf("eventlog: write event %q: %w", ev.ID, b.err)
	}
	return nil
}

// drain writes the waiting batches one Write each until none is left.
func (h *Handler) drain() {
	for {
		h.mu.Lock()
		b := h.next
		h.next = nil
		if b == nil {
			h.writing = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		_, b.err = h.w.Write(b.buf)
		recycle(b.buf)
		b.buf = nil
		close(b.done)
	}
}

// showable is t in UTC, or the zero time (left out of the line) when JSON
// cannot show it: outside the years 0 to 9999. Workers already read foreign
// timestamps with amqp.EventTime; this keeps the handler itself from
// failing an event for its timestamp.
func showable(t time.Time) time.Time {
	// Unix seconds of 0000-01-01 and 10000-01-01 UTC; cheaper than t.Year().
	const first, end = -62167219200, 253402300800
	if s := t.Unix(); s < first || s >= end {
		return time.Time{}
	}
	return t.UTC()
}
