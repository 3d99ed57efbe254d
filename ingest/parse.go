package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/eventfleet/eventfleet/event"
)

// maxListedInvalid bounds the "invalid" list of a 400, so a huge bad array
// does not produce a huge answer.
const maxListedInvalid = 20

// parseEvents reads one event object or a non-empty array of them. On failure
// it returns the 400 answer, naming every bad index of an array.
func parseEvents(body []byte) ([]event.Event, *errorResponse) {
	trimmed := bytes.Trim(body, " \t\r\n") // JSON whitespace only: scanBody skips no other
	switch {
	case len(trimmed) == 0:
		return nil, &errorResponse{Error: "empty body: send one event object or a JSON array of them"}
	case trimmed[0] == '{':
		ev, err := event.ParseInput(trimmed)
		if err != nil {
			return nil, &errorResponse{Error: "invalid event: " + err.Error()}
		}
		return []event.Event{ev}, nil
	case trimmed[0] != '[':
		return nil, &errorResponse{Error: "invalid JSON: send one event object or a JSON array of them"}
	}
	// A well-formed array, the common case, is decoded in one pass; one with a
	// bad event is read again element by element to name every bad index.
	if evs, err := event.ParseInputs(trimmed); err == nil && len(evs) > 0 {
		return evs, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, &errorResponse{Error: "invalid JSON: " + err.Error()}
	}
	if len(raws) == 0 {
		return nil, &errorResponse{Error: "empty array: send at least one event"}
	}
	evs := make([]event.Event, 0, len(raws))
	var bad []invalidEvent
	nbad := 0
	for i, raw := range raws {
		ev, err := event.ParseInput(raw)
		if err != nil {
			nbad++
			if len(bad) < maxListedInvalid {
				bad = append(bad, invalidEvent{Index: i, Error: err.Error()})
			}
			continue
		}
		evs = append(evs, ev)
	}
	if nbad == 0 {
		return evs, nil
	}
	msg := fmt.Sprintf("invalid event at index %d: %s", bad[0].Index, bad[0].Error)
	if nbad > 1 {
		msg += fmt.Sprintf(" (and %d more invalid events); nothing was published", nbad-1)
	} else {
		msg += "; nothing was published"
	}
	return nil, &errorResponse{Error: msg, Invalid: bad}
}
