package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// MaxBody is the largest body Event takes: amqp.DefaultMaxBody (16 MiB),
// the largest the fleet's workers read (WORKER_MAX_BODY's default). A
// larger one would be dead-lettered unread by every worker at best, and
// past the broker's max_message_size (128 MiB on RabbitMQ 3.10+) the broker
// closes the publisher's connection for it (406) on every attempt, so the
// source would stall on it forever; it is rejected at the source instead.
//
// A source holds at most its window (PUBLISH_WINDOW) of bodies in flight,
// so up to Window × MaxBody bytes (256 × 16 MiB = 4 GiB) if every message
// is that large: size the window, or the relay's memory, for the largest
// bodies you publish.
const MaxBody = amqp.DefaultMaxBody

// ErrBodyTooLarge: a body is larger than MaxBody. It comes wrapped in
// ErrRejected (and event.ErrInvalidData).
var ErrBodyTooLarge = errors.New("body larger than bridge.MaxBody")

// ErrRejected wraps every reason a message cannot become an event: a bad
// name, a body that is not a JSON object, an unusable aggregateId. Such a
// message is set aside, never retried: trying it again cannot succeed.
var ErrRejected = errors.New("message rejected")

// Event builds the event for a message whose channel or subject named the
// event type typ, with the body as it came and the given id (a fresh
// event.NewID() when the source has no stable one). AggregateID is the
// body's "aggregateId" (a string, or a number written as it is). A body
// larger than MaxBody is rejected (ErrBodyTooLarge) before it is parsed.
func Event(typ string, body []byte, id string) (event.Event, error) {
	if err := event.ValidateType(typ); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if len(body) > MaxBody {
		return event.Event{}, fmt.Errorf("%w: %w: %w: %d bytes, the limit is %d", ErrRejected, event.ErrInvalidData, ErrBodyTooLarge, len(body), MaxBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !event.ValidJSON(body) {
		return event.Event{}, fmt.Errorf("%w: %w: the body must be a JSON object", ErrRejected, event.ErrInvalidData)
	}
	agg, err := aggregateID(body)
	if err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	ev := event.Event{ID: id, Type: typ, AggregateID: agg, Data: json.RawMessage(body)}
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return ev, nil
}

// From marks ev as bridged from origin (amqp.HeaderBridgedFrom), e.g.
// "redis:events:CardAddedToLibraryEvent".
func From(ev *event.Event, origin string) {
	if ev.Headers == nil {
		ev.Headers = map[string]any{}
	}
	ev.Headers[headerBridgedFrom] = origin
}

// headerBridgedFrom is amqp.HeaderBridgedFrom (package amqp imports
// nothing of ours that could import this one; the test checks the two).
const headerBridgedFrom = "eventfleet-bridged-from"

// aggregateID is body's top-level "aggregateId": "" when absent or null.
func aggregateID(body []byte) (string, error) {
	var probe struct {
		AggregateID json.RawMessage `json:"aggregateId"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return "", fmt.Errorf("%w: %v", event.ErrInvalidData, err)
	}
	raw := bytes.TrimSpace(probe.AggregateID)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: aggregateId: %v", event.ErrInvalidAggregateID, err)
		}
		return s, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", fmt.Errorf("%w: aggregateId %s", event.ErrInvalidAggregateID, raw)
		}
		return string(raw), nil
	}
	return "", fmt.Errorf("%w: aggregateId must be a string or a number, not %.20s", event.ErrInvalidAggregateID, raw)
}
