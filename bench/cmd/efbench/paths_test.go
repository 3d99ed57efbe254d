package main

import (
	"encoding/json"
	"testing"

	"github.com/eventfleet/eventfleet/event"
)

func TestPathPair(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"bin-serve-single":       "bare-serve-single",
		"bin-worker-webhook":     "bare-worker-webhook",
		"bare-worker-log":        "",
		"ef-worker-log":          "",
		"bin-":                   "",
		"bin-relay-redis":        "bare-relay",
		"bin-relay-redis-stream": "bare-relay",
		"bin-relay-jetstream":    "bare-relay",
	} {
		if got := pathPair(id); got != want {
			t.Errorf("pathPair(%q) = %q, want %q", id, got, want)
		}
	}
}

// The load generator's bodies are what publisher serve accepts: one
// event.Input, or an array of them, each with the configured data size.
func TestRequestBody_IsValidInput(t *testing.T) {
	t.Parallel()
	for _, per := range []int{1, 3, 100} {
		body := requestBody(512, per)
		var raws []json.RawMessage
		if per == 1 {
			raws = []json.RawMessage{body}
		} else if err := json.Unmarshal(body, &raws); err != nil {
			t.Fatalf("%d per request: not a JSON array: %v", per, err)
		}
		if len(raws) != per {
			t.Fatalf("%d per request: %d events", per, len(raws))
		}
		for _, raw := range raws {
			ev, err := event.ParseInput(raw)
			if err != nil {
				t.Fatalf("%d per request: %v", per, err)
			}
			if ev.Type != eventType || len(ev.Data) != 512 {
				t.Fatalf("%d per request: type %q, %d data bytes", per, ev.Type, len(ev.Data))
			}
		}
	}
}
