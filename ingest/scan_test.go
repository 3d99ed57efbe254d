package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestScanBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		events int
		depth  int
	}{
		{"blank", " \n\t", 0, 0},
		{"one event", `{"type":"A"}`, 1, 1},
		{"one event with data", `{"type":"A","data":{"k":[1]}}`, 1, 3},
		{"scalar", `"A"`, 1, 0},
		{"empty array", `[]`, 0, 0},
		{"blank array", "[ \n ]", 0, 0},
		{"array of three", `[{"type":"A"},{"type":"B"},{"type":"C"}]`, 3, 1},
		{"array with space", " [ {\"type\":\"A\"} ,\n {\"type\":\"B\"} ] ", 2, 1},
		{"array of scalars", `[1,"two",null,true]`, 4, 0},
		{"nested arrays count once", `[[1,2,3],[4]]`, 2, 1},
		{"commas inside events", `[{"a":1,"b":[1,2,3]},{"c":{"d":1,"e":2}}]`, 2, 2},
		{"brackets in a string", `[{"type":"[[[{{{,,,"}]`, 1, 1},
		{"escaped quote", `[{"type":"a\"[,{"},{"type":"b"}]`, 2, 1},
		{"escaped backslash before the quote", `[{"type":"a\\"},{"type":"b\\\\"}]`, 2, 1},
		{"unicode escape", `[{"type":"\u005b\"\u0022"}]`, 1, 1},
		{"deepest event wins", `[{"a":1},{"a":[[[[1]]]]},{"b":{}}]`, 3, 5},
		// Not JSON: figures the decoder then refuses; no panic, no negative depth.
		{"unbalanced close", `]]]}}}`, 1, 0},
		{"unterminated string", `[{"type":"A`, 1, 1},
		{"unterminated array", `[{},{},`, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := scanBody([]byte(tt.body))
			if got.events != tt.events || got.depth != tt.depth {
				t.Errorf("scanBody(%s) = %d events, depth %d; want %d, %d", tt.body, got.events, got.depth, tt.events, tt.depth)
			}
		})
	}
}

// TestScanBody_NoAllocation: the point of the scan is to refuse a huge
// array before anything is made of it.
func TestScanBody_NoAllocation(t *testing.T) {
	body := []byte("[" + strings.Repeat(`{"type":"A"},`, 80_000) + `{"type":"A"}]`)
	var s shape
	if n := testing.AllocsPerRun(5, func() { s = scanBody(body) }); n != 0 {
		t.Errorf("scanBody allocated %v times, want 0", n)
	}
	if s.events != 80_001 {
		t.Errorf("events %d, want 80001", s.events)
	}
}

// FuzzScanBody compares the scan with encoding/json's tokenizer on every
// valid JSON document: the same element count and depth.
func FuzzScanBody(f *testing.F) {
	for _, seed := range []string{
		`{"type":"A"}`, `[]`, `[{"type":"A"},{"type":"B","data":{"k":[1,{"x":"]"}]}}]`,
		`[1,[2,[3]],"\"[{"]`, `"x"`, ` [ ] `, `{"a":{"a":{"a":{}}}}`, `[[],[[]],{}]`,
		`{"a":[[1]],"a":1}`, `["\\", "\\\"", "\u0041"]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		want, err := tokenShape(body)
		if err != nil {
			t.Fatalf("tokenizer on valid JSON %q: %v", body, err)
		}
		if got := scanBody(body); got != want {
			t.Errorf("scanBody(%q) = %+v, encoding/json says %+v", body, got, want)
		}
	})
}

// tokenShape measures body with json.Decoder.Token, the reference: tokens,
// not a decoded tree, so that a duplicate key does not hide a deep value.
func tokenShape(body []byte) (shape, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var (
		s        shape
		array    bool
		depth    int
		maxDepth int
		first    = true
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return shape{}, err
		}
		d, isDelim := tok.(json.Delim)
		closing := isDelim && (d == ']' || d == '}')
		if first {
			first = false
			array = d == '['
			if !array {
				s.events = 1
			}
		}
		// A value (or a key: none at depth 1 of an array) inside the
		// top-level array begins an element.
		if array && depth == 1 && !closing {
			s.events++
		}
		switch {
		case closing:
			depth--
		case isDelim:
			depth++
			maxDepth = max(maxDepth, depth)
		}
	}
	s.depth = maxDepth
	if array {
		s.depth = max(maxDepth-1, 0)
	}
	return s, nil
}
