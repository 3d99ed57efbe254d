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
