package bridge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/event"
)

func TestEvent_OriginalPublisherBody(t *testing.T) {
	body := []byte(`{"cardId":"c-1","libraryId":"lib-9","aggregateId":"lib-9","timestamp":"2026-12-03T10:00:00Z"}`)
	ev, err := bridge.Event("CardAddedToLibraryEvent", body, "events:1700000000000-0")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "CardAddedToLibraryEvent" || ev.AggregateID != "lib-9" || ev.ID != "events:1700000000000-0" || string(ev.Data) != string(body) {
		t.Fatalf("got %+v", ev)
	}
}

func TestEvent_NoStableIDGetsFreshUUIDv7(t *testing.T) {
	body := []byte(`{"aggregateId":42}`)
	a, err := bridge.Event("X", body, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.Event("X", body, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || len(a.ID) != 36 || a.ID[14] != '7' {
		t.Fatalf("ids %q %q: want two distinct UUIDv7s (identical events stay two events)", a.ID, b.ID)
	}
	if a.AggregateID != "42" {
		t.Fatalf("numeric aggregateId: got %q", a.AggregateID)
	}
}

func TestEvent_Rejects(t *testing.T) {
	for _, tc := range []struct {
		name, typ, body string
		want            error
	}{
		{"empty type", "", `{}`, event.ErrMissingType},
		{"wildcard type", "Card*", `{}`, event.ErrInvalidType},
		{"not JSON", "X", `{"a":`, event.ErrInvalidData},
		{"array", "X", `[1]`, event.ErrInvalidData},
		{"string body", "X", `"hi"`, event.ErrInvalidData},
		{"empty body", "X", ``, event.ErrInvalidData},
		{"object aggregate", "X", `{"aggregateId":{"a":1}}`, event.ErrInvalidAggregateID},
		{"control char aggregate", "X", `{"aggregateId":"a\u0007b"}`, event.ErrInvalidAggregateID},
		{"long aggregate", "X", `{"aggregateId":"` + strings.Repeat("a", 1025) + `"}`, event.ErrInvalidAggregateID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bridge.Event(tc.typ, []byte(tc.body), "")
			if !errors.Is(err, bridge.ErrRejected) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want ErrRejected and %v", err, tc.want)
			}
		})
	}
}

func TestEvent_NullOrMissingAggregate(t *testing.T) {
	for _, body := range []string{`{}`, `{"aggregateId":null}`} {
		ev, err := bridge.Event("X", []byte(body), "")
		if err != nil || ev.AggregateID != "" {
			t.Fatalf("%s: got %+v, %v", body, ev, err)
		}
	}
}

func TestEvent_RejectsBodyOverMaxBody(t *testing.T) {
	t.Parallel()
	pad := func(n int) []byte {
		// {"p":"xxx…"} of exactly n bytes
		return []byte(`{"p":"` + strings.Repeat("x", n-8) + `"}`)
	}
	if _, err := bridge.Event("X", pad(bridge.MaxBody), ""); err != nil {
		t.Fatalf("a body of exactly MaxBody: %v", err)
	}
	_, err := bridge.Event("X", pad(bridge.MaxBody+1), "")
	for _, want := range []error{bridge.ErrRejected, bridge.ErrBodyTooLarge, event.ErrInvalidData} {
		if !errors.Is(err, want) {
			t.Fatalf("MaxBody+1 bytes: got %v, want %v", err, want)
		}
	}
}

func TestFrom_SetsTheWireHeader(t *testing.T) {
	ev, err := bridge.Event("X", []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	bridge.From(&ev, "redis:events:X")
	if got := ev.Headers[amqp.HeaderBridgedFrom]; got != "redis:events:X" {
		t.Fatalf("%s = %v, want redis:events:X (bridge's name for the header must be amqp's)", amqp.HeaderBridgedFrom, got)
	}
}
