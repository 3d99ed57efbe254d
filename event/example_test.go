package event_test

import (
	"context"
	"fmt"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// A Registry routes each event type to its handler. A Worker given one (and
// no EventTypes) binds its queue to exactly the registered types; an event
// of another type is a permanent failure, dead-lettered at once.
func ExampleRegistry() {
	r := event.NewRegistry().
		OnFunc("CardAddedToLibraryEvent", func(_ context.Context, e event.Event) error {
			fmt.Printf("card added to %s: %s\n", e.AggregateID, e.Data)
			return nil
		}).
		OnFunc("LibraryCreatedEvent", func(_ context.Context, e event.Event) error {
			fmt.Println("library", e.AggregateID)
			return nil
		})
	types, catchAll := r.Types()
	fmt.Println(types, catchAll)

	ctx := context.Background()
	_ = r.Handle(ctx, event.Event{Type: "LibraryCreatedEvent", AggregateID: "lib-1"})
	_ = r.Handle(ctx, event.Event{Type: "CardAddedToLibraryEvent", AggregateID: "lib-1", Data: []byte(`{"card":"c-1"}`)})
	err := r.Handle(ctx, event.Event{Type: "OrderPlacedEvent"})
	fmt.Println(err, retry.IsPermanent(err))
	// Output:
	// [CardAddedToLibraryEvent LibraryCreatedEvent] false
	// library lib-1
	// card added to lib-1: {"card":"c-1"}
	// permanent: no handler registered for event type "OrderPlacedEvent" true
}
