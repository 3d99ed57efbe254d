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
	mu sync.Mutex // one line at a time
	w  io.Writer
}

var _ event.Handler = (*Handler)(nil)

// New returns a Handler that writes to w.
func New(w io.Writer) *Handler { return &Handler{w: w} }

// Handle writes ev as one line. An event whose Data is not JSON cannot be
// written as a line and fails permanently; a failed write is retryable.
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
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep "<", ">" and "&" in data as published rather than \u003c etc.
	enc.SetEscapeHTML(false)
	// Encode compacts Data, so a pretty-printed document stays on its line,
	// and ends the line with "\n".
	if err := enc.Encode(line); err != nil {
		return retry.Permanent(fmt.Errorf("eventlog: event %q: %w", ev.ID, err))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("eventlog: write event %q: %w", ev.ID, err)
	}
	return nil
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
