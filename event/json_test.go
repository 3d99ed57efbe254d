package event_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/event"
)

var jsonSeeds = []string{
	`{}`, `[]`, `1`, `"x"`, `{"a":1}`, `{"a":1,}`, `{a:1}`, `[1,2,]`, "\"\x01\"", "\"\xff\"", `01`, `1.`, `-`,
	`{"a":"\u12"}`, `{"a":"\uD800"}`, `nul`, `true false`, ` {} `, `{"a":[1,{"b":null}]}`, `1e5`, `1E+2`,
	`-0.0e-0`, `{"a" 1}`, `[`, `{"\t":1}`, "{\"a\":\"\t\"}", `[1 2]`, `"\/"`, `"\q"`, ``, ` `, `{}}`, `{} {}`,
}

// Nesting deeper than encoding/json's limit (10,000) is invalid for both.
func TestValidJSON_DeepNesting(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{100, 10000, 10001, 20000} {
		b := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		if got, want := event.ValidJSON(b), json.Valid(b); got != want {
			t.Errorf("depth %d: ValidJSON %v, encoding/json %v", depth, got, want)
		}
	}
}

// FuzzValidJSON checks ValidJSON against encoding/json.Valid.
//
//	go test -run '^$' -fuzz FuzzValidJSON -fuzztime 60s ./event/
func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := event.ValidJSON(b), json.Valid(b); got != want {
			t.Fatalf("ValidJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// Deeper than encoding/json's limit fails both; within it both compact.
func TestCompactJSON_DeepNesting(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{100, 10000, 10001, 20000} {
		b := []byte(strings.Repeat("[ ", depth) + strings.Repeat("]", depth))
		checkCompact(t, b)
	}
}

// FuzzCompactJSON checks CompactJSON against encoding/json.Compact.
//
//	go test -run '^$' -fuzz FuzzCompactJSON -fuzztime 60s ./event/
func FuzzCompactJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("{\n  \"a\" : [1, 2 ,\t\"x y\"]\r\n}"))
	f.Add([]byte(`{"a":"<&>\u2028","b":"\u2028"}`))
	f.Fuzz(checkCompact)
}

func checkCompact(t *testing.T, b []byte) {
	prefix := "kept"
	got, want := bytes.NewBufferString(prefix), bytes.NewBufferString(prefix)
	gotErr, wantErr := event.CompactJSON(got, b), json.Compact(want, b)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("CompactJSON(%q) error %v, encoding/json's %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		// What a failure leaves in dst is not part of the contract;
		// appendLine drops the line then.
		return
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("CompactJSON(%q) = %q, encoding/json's %q", b, got.Bytes(), want.Bytes())
	}
}

func BenchmarkValidJSON(b *testing.B) {
	body := []byte(`{"cardId":"c-12345","libraryId":"lib-987","title":"Dune","authors":["Frank Herbert"],"copies":3,"meta":{"isbn":"978-0441013593","available":true,"notes":null}}`)
	b.Run("eventfleet", func(b *testing.B) {
		for b.Loop() {
			event.ValidJSON(body)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			json.Valid(body)
		}
	})
}

// ParseInputs must agree with decoding each element with ParseInput, which
// is what the ingest falls back to when it fails.
func FuzzParseInputs(f *testing.F) {
	for _, s := range []string{
		`[{"type":"A"}]`,
		`[{"type":"A","id":"1","aggregate_id":"x","data":{"n":[1,2]}}, {"type":"B","data":null}]`,
		`[{"type":"A","agregate_id":"x"}]`,
		`[{"type":"A"}] ]`,
		`[{"type":"A"},null]`,
		`[{"type":"A","data":{"a":1}} , {"Type":"B"}]`,
		`[{"type":"A\u0000"}]`,
		`[]`,
		` [ {"type" : "A" } ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := event.ParseInputs(b)
		var raws []json.RawMessage
		var each []event.Event
		eachErr := json.Unmarshal(bytes.TrimSpace(b), &raws)
		for _, raw := range raws {
			if eachErr != nil {
				break
			}
			var ev event.Event
			ev, eachErr = event.ParseInput(raw)
			each = append(each, ev)
		}
		if (err == nil) != (eachErr == nil) {
			t.Fatalf("ParseInputs err %v, element by element err %v, for %q", err, eachErr, b)
		}
		if err != nil {
			return
		}
		if len(evs) != len(each) {
			t.Fatalf("%d events, element by element %d", len(evs), len(each))
		}
		for i := range evs {
			a, e := evs[i], each[i]
			if a.ID != e.ID && (len(a.ID) != 36 || len(e.ID) != 36) { // both generated when the input had none
				t.Fatalf("event %d: id %q vs %q", i, a.ID, e.ID)
			}
			if a.Type != e.Type || a.AggregateID != e.AggregateID || !bytes.Equal(a.Data, e.Data) {
				t.Fatalf("event %d: %+v vs %+v", i, a, e)
			}
		}
	})
}
