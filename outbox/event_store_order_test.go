package outbox

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// event_store rows of one aggregate go out in version order, as
// docs/outbox.md promises ("ORDER BY timestamp, then per aggregate by
// version"), even when their timestamps disagree (the app's clocks: two
// instances, or a timestamp taken before a retried transaction), and also when
// the earlier version falls outside the scan's batch.
func TestRelay_EventStoreVersionOrderWhenTimestampsDisagree(t *testing.T) {
	for _, batch := range []int{0, 1} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			url, conn := eventStoreDB(t)
			ctx := context.Background()
			at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
			// Version 2 carries a timestamp 2 s earlier than version 1's.
			if _, err := conn.Exec(ctx, `INSERT INTO event_store (id, aggregate_id, event_type, event_data, version, timestamp) VALUES
				('0193a5d0-0000-7000-8000-0000000000b1', 'lib-1', 'CardAdded', '{}', 1, $1::timestamptz + interval '2 seconds'),
				('0193a5d0-0000-7000-8000-0000000000b2', 'lib-1', 'CardAdded', '{}', 2, $1),
				('0193a5d0-0000-7000-8000-0000000000b3', 'lib-1', 'CardAdded', '{}', 3, $1::timestamptz + interval '3 seconds'),
				('0193a5d0-0000-7000-8000-0000000000c1', 'lib-2', 'CardAdded', '{}', 1, $1::timestamptz + interval '1 second')`, at); err != nil {
				t.Fatal(err)
			}
			pub := &fakePublisher{}
			startRelay(t, Config{DatabaseURL: url, Format: FormatEventStore, Batch: batch}, pub)
			eventually(t, "all rows published", func() bool { return len(pub.ids()) == 4 })
			var lib1 []string
			for _, e := range pub.events() {
				if e.AggregateID == "lib-1" {
					lib1 = append(lib1, e.ID)
				}
			}
			want := []string{"0193a5d0-0000-7000-8000-0000000000b1", "0193a5d0-0000-7000-8000-0000000000b2",
				"0193a5d0-0000-7000-8000-0000000000b3"}
			if !slices.Equal(lib1, want) {
				t.Fatalf("lib-1 published as %v, want version order %v", lib1, want)
			}
		})
	}
}
