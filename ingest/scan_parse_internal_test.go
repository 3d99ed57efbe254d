package ingest

import (
	"bytes"
	"testing"
)

// FuzzScanBody_WhatParseEventsAccepts: the limits hold for what the handler
// decodes, not only for strict JSON. Whenever parseEvents accepts a body,
// scanBody must count exactly its events and at least its depth (measured
// on the bytes parseEvents decoded). FuzzScanBody skips every body that
// json.Valid refuses, so it cannot see that parseEvents trims Unicode
// spaces (bytes.TrimSpace) that scanBody does not skip.
func FuzzScanBody_WhatParseEventsAccepts(f *testing.F) {
	for _, seed := range []string{
		`[{"type":"A"},{"type":"B"}]`, `{"type":"A","data":[[1]]}`, " \n[{\"type\":\"A\"}]",
		"\u00a0[{\"type\":\"A\"},{\"type\":\"A\"}]", "\f{\"type\":\"A\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, bad := parseEvents(body)
		if bad != nil {
			return
		}
		want, err := tokenShape(bytes.TrimSpace(body))
		if err != nil {
			t.Fatalf("parseEvents accepted %q, which the tokenizer refuses: %v", body, err)
		}
		got := scanBody(body)
		if got.events != len(evs) || got.depth < want.depth {
			t.Errorf("scanBody(%q) = %+v, but parseEvents decoded %d events of depth %d", body, got, len(evs), want.depth)
		}
	})
}
