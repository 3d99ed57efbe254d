package event

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/retry"
)

func TestParseInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string
	}{
		{`{"type":"CardAddedToLibraryEvent","aggregate_id":"lib-1","id":"x1","data":{"a":1}}`, ""},
		{`{"type":"T"}`, ""},
		{`{"type":"T","data":null}`, ""},
		{`{"type":"T"}}`, "invalid JSON"},
		{`{"type":"T"} {"type":"U"}`, "invalid JSON"},
		{`{"type":"T"`, "invalid JSON"},
		{`{"type":"T","agregate_id":"x"}`, "unknown field"},
		{`{"aggregate_id":"x"}`, "missing"},
		{`{"type":"*Event"}`, "wildcard"},
		{`{"type":"a\u0001b"}`, "control character"},
		{`{"type":"` + strings.Repeat("x", 256) + `"}`, "limit is 255"},
		{`{"type":"T","id":"` + strings.Repeat("x", 256) + `"}`, "invalid event id"},
		{`[{"type":"T"}]`, "invalid JSON"},
		{`{"type":"T","id":"a\u001b[2J\n  reason: FAKE"}`, `invalid event id: "a\x1b[2J\n  reason: FAKE" contains control character U+001B`},
		{`{"type":"T","id":"a\u009bb"}`, `invalid event id: "a\u009bb" contains control character U+009B`},
		{`{"type":"T","id":"a\u007fb"}`, "invalid event id"},
		{`{"type":"T","id":"Grüße-\u4e16"}`, ""},
		{`{"type":"T","aggregate_id":"lib\r\n1"}`, `invalid aggregate_id: "lib\r\n1" contains control character U+000D`},
		{`{"type":"T","aggregate_id":"` + strings.Repeat("x", 1025) + `"}`, "invalid aggregate_id: 1025 bytes"},
		{`{"type":"T\u0085"}`, `invalid event type: "T\u0085" contains control character U+0085`},
	}
	for _, tt := range tests {
		ev, err := ParseInput([]byte(tt.in))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseInput(%s): %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseInput(%.60s) = %v, want error containing %q", tt.in, err, tt.wantErr)
		case err == nil && (ev.ID == "" || len(ev.Data) == 0):
			t.Errorf("ParseInput(%s) left id or data empty: %+v", tt.in, ev)
		}
	}
	ev, _ := ParseInput([]byte(`{"type":"T","data":null}`))
	if string(ev.Data) != "{}" {
		t.Errorf("null data = %s, want {}", ev.Data)
	}
	ev, _ = ParseInput([]byte(`{"type":"T","id":"given"}`))
	if ev.ID != "given" {
		t.Errorf("given id replaced: %q", ev.ID)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	var got []string
	r := NewRegistry().
		OnFunc("B", func(context.Context, Event) error { got = append(got, "B"); return nil }).
		OnFunc("A", func(context.Context, Event) error { got = append(got, "A"); return nil })
	types, catchAll := r.Types()
	if strings.Join(types, ",") != "A,B" || catchAll {
		t.Fatalf("Types() = %v, %v", types, catchAll)
	}
	ctx := context.Background()
	_ = r.Handle(ctx, Event{Type: "A"})
	err := r.Handle(ctx, Event{Type: "C"})
	if !errors.Is(err, ErrNoHandler) || !retry.IsPermanent(err) {
		t.Fatalf("unknown type: %v, want permanent ErrNoHandler", err)
	}
	r.Default(HandlerFunc(func(context.Context, Event) error { got = append(got, "default"); return nil }))
	if err := r.Handle(ctx, Event{Type: "C"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "A,default" {
		t.Fatalf("dispatch order %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a type twice must panic")
		}
	}()
	r.OnFunc("A", func(context.Context, Event) error { return nil })
}

// TestValidate_ControlCharacters: ids and aggregate ids with control
// characters or invalid UTF-8 are refused with a sentinel naming the field.
func TestValidate_ControlCharacters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ev   Event
		want error
	}{
		{Event{Type: "T", ID: "a\x1bb"}, ErrInvalidID},
		{Event{Type: "T", ID: "a\xffb"}, ErrInvalidID},
		{Event{Type: "T", AggregateID: "a\nb"}, ErrInvalidAggregateID},
		{Event{Type: "T", AggregateID: "a\xc3"}, ErrInvalidAggregateID},
		{Event{Type: "T\u009b"}, ErrInvalidType},
		{Event{Type: "T", ID: "ok\tnot"}, ErrInvalidID},
		{Event{Type: "T", ID: "ok", AggregateID: "lib-1 ünïcode"}, nil},
	}
	for _, tt := range tests {
		if err := tt.ev.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Validate(%+v) = %v, want %v", tt.ev, err, tt.want)
		}
	}
}
