package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxTypeLen is the longest event type accepted. An AMQP routing key is a short
// string of at most 255 bytes.
const MaxTypeLen = 255

// Event is one domain event, as published and as handed to a handler.
type Event struct {
	// ID identifies the event; it survives redeliveries and retries.
	ID string
	// Type is the event type, also the routing key.
	Type string
	// AggregateID names the aggregate the event belongs to. Optional.
	AggregateID string
	// Source is the app that published the event (AMQP app_id). Optional:
	// a Publisher puts its own AppID in when it is empty.
	Source string
	// Time is when the event was published. Zero when a foreign publisher did
	// not set a timestamp.
	Time time.Time
	// Data is the event's JSON document (the AMQP body).
	Data json.RawMessage
	// Attempt counts deliveries to a handler: 1 first, 2 on the first retry.
	// Zero on events being published.
	Attempt int
	// Headers holds extra AMQP headers a publisher set. Read-only for handlers.
	Headers map[string]any
}

// Errors returned by Validate and Parse. Test with errors.Is.
var (
	ErrMissingType = errors.New("event type is missing")
	ErrInvalidType = errors.New("invalid event type")
	ErrInvalidData = errors.New("event data is not valid JSON")
	ErrInvalidID   = errors.New("invalid event id")
	// ErrInvalidAggregateID: an aggregate_id over 1024 bytes, not UTF-8, or
	// with a control character.
	ErrInvalidAggregateID = errors.New("invalid aggregate_id")
	// ErrInvalidSource: a Source over 255 bytes (AMQP's limit for app_id),
	// not UTF-8, or with a control character.
	ErrInvalidSource = errors.New("invalid source")
)

// ValidateType reports whether t can be used as an event type: non-empty, at
// most MaxTypeLen bytes of UTF-8 without control characters, and without the
// topic wildcards "*" and "#" (they would make a routing key that means
// something else to a binding).
func ValidateType(t string) error {
	switch {
	case t == "":
		return ErrMissingType
	case len(t) > MaxTypeLen:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidType, len(t), MaxTypeLen)
	case !utf8.ValidString(t):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidType)
	case strings.ContainsAny(t, "*#"):
		return fmt.Errorf("%w %q: \"*\" and \"#\" are binding wildcards, not allowed in an event type", ErrInvalidType, t)
	}
	for _, r := range t {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q: contains a control character", ErrInvalidType, t)
		}
	}
	return nil
}

// Validate checks an event before it is published. Type, ID and
// AggregateID must be UTF-8 without control characters (C0, DEL, C1): they
// end up in logs, HTTP headers and terminals. Workers still handle events
// from foreign publishers that break this rule.
func (e *Event) Validate() error {
	if err := e.validateText(); err != nil {
		return err
	}
	if len(e.Data) > 0 && !ValidJSON(e.Data) {
		return ErrInvalidData
	}
	return nil
}

// validateText is Validate without the data: for data already known to be
// valid JSON, as part of a document that was checked whole.
func (e *Event) validateText() error {
	if err := ValidateType(e.Type); err != nil {
		return err
	}
	if err := checkText(e.Type); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidType, err)
	}
	if len(e.ID) > 255 {
		return fmt.Errorf("%w: %d bytes, the limit is 255", ErrInvalidID, len(e.ID))
	}
	if err := checkText(e.ID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	if len(e.AggregateID) > 1024 {
		return fmt.Errorf("%w: %d bytes, the limit is 1024", ErrInvalidAggregateID, len(e.AggregateID))
	}
	if err := checkText(e.AggregateID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAggregateID, err)
	}
	if len(e.Source) > 255 {
		return fmt.Errorf("%w: %d bytes, the limit is 255", ErrInvalidSource, len(e.Source))
	}
	if err := checkText(e.Source); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSource, err)
	}
	return nil
}

// NewID returns a new event ID: a UUIDv7, so IDs sort by creation time.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source fails.
		panic(fmt.Sprintf("event: generating a UUIDv7: %v", err))
	}
	return id.String()
}

// Input is the JSON form of an event that publishers accept, one per line on
// `publisher publish` and in `POST /events`:
//
//	{"type": "CardAddedToLibraryEvent", "aggregate_id": "lib-1", "id": "optional", "data": {...}}
type Input struct {
	ID          string          `json:"id,omitempty"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// Event converts the input to a validated Event. A missing id gets a new
// UUIDv7; missing data becomes {}.
func (in Input) Event() (Event, error) { return in.event(false) }

// event is Event; dataValid says that in.Data is known to be valid JSON, so
// it is not scanned again.
func (in Input) event(dataValid bool) (Event, error) {
	ev := Event{ID: in.ID, Type: in.Type, AggregateID: in.AggregateID, Data: in.Data}
	if len(bytes.TrimSpace(ev.Data)) == 0 || bytes.Equal(bytes.TrimSpace(ev.Data), []byte("null")) {
		ev.Data = json.RawMessage("{}")
	}
	validate := ev.Validate
	if dataValid {
		validate = ev.validateText
	}
	if err := validate(); err != nil {
		return Event{}, err
	}
	if ev.ID == "" {
		ev.ID = NewID()
	}
	return ev, nil
}

// ParseInput decodes one JSON event in the Input format and validates it.
// Unknown fields are rejected so that a typo ("agregate_id") is an error rather
// than a silently dropped value.
func ParseInput(b []byte) (Event, error) {
	// Validity first: a Decoder alone accepts trailing garbage such as
	// an extra "}" after the object.
	if !ValidJSON(b) {
		var probe any
		if err := json.Unmarshal(b, &probe); err != nil {
			return Event{}, fmt.Errorf("invalid JSON: %w", err)
		}
		return Event{}, errors.New("invalid JSON")
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Event{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Event{}, errors.New("invalid JSON: more than one value")
	}
	// The data is a part of b, which was found valid whole.
	return in.event(true)
}

// ParseInputs decodes a JSON array of events in the Input format, in one
// pass, and validates them. It fails on the first problem without saying
// which event had it: a caller that must name every bad event parses the
// elements one by one with ParseInput after a failure. Unknown fields are
// rejected, as by ParseInput.
func ParseInputs(b []byte) ([]Event, error) {
	b = bytes.Trim(b, " \t\r\n") // JSON whitespace only, as a decoder skips
	var ins []Input
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ins); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.InputOffset() != int64(len(b)) {
		return nil, errors.New("invalid JSON: more than one value")
	}
	evs := make([]Event, len(ins))
	for i, in := range ins {
		// The decoder checked every element's data as JSON already.
		ev, err := in.event(true)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		evs[i] = ev
	}
	return evs, nil
}
