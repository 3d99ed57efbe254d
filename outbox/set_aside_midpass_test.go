package outbox

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// A row set aside during a pass that began with none set aside: the pass's
// scans leave the side table out, so what keeps its aggregate's later rows
// back is the aggregate held in memory, in the batch, the read-ahead and the
// batches after. The other aggregate flows.
func TestRelay_SetAsideMidPassHoldsItsAggregate(t *testing.T) {
	for _, bad := range []int{0, 2, 4, 6} { // A's rows are 0, 2, 4, …: first in batch 1, 2, 3, 4
		t.Run(fmt.Sprintf("row %d", bad), func(t *testing.T) {
			url, conn := migrated(t)
			var a, b []string
			for i := range 12 {
				agg := map[bool]string{true: "A", false: "B"}[i%2 == 0]
				id := addTx(t, conn, true, ev("T", agg, `{}`))[0]
				if agg == "A" {
					a = append(a, id)
				} else {
					b = append(b, id)
				}
			}
			poison := a[bad/2]
			pub := &fakePublisher{refuse: func(ev event.Event) error {
				if ev.ID == poison {
					return fmt.Errorf("%w: test", event.ErrInvalidData)
				}
				return nil
			}}
			startRelay(t, Config{DatabaseURL: url, Batch: 2}, pub)
			eventually(t, "B published and A's row set aside", func() bool {
				var gotB int
				for _, e := range pub.events() {
					if e.AggregateID == "B" {
						gotB++
					}
				}
				return gotB == len(b) && count(t, conn, "SELECT count(*) FROM eventfleet_outbox_set_aside") == 1
			})
			time.Sleep(300 * time.Millisecond) // several more passes (PollInterval 50 ms)
			var gotA []string
			for _, e := range pub.events() {
				if e.AggregateID == "A" {
					gotA = append(gotA, e.ID)
				}
			}
			if want := a[:bad/2]; !slices.Equal(gotA, want) {
				t.Fatalf("aggregate A published as %v, want only the rows before the set-aside one: %v", gotA, want)
			}
			if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE aggregate_id = 'A'"); n != len(a)-bad/2 {
				t.Fatalf("%d of A's rows left, want %d (the set-aside one and those after it)", n, len(a)-bad/2)
			}
		})
	}
}
