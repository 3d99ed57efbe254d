package outbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// With batches smaller than the backlog, the next batch is read while the
// current one is published: every row still goes out once, each aggregate
// in order; a row refused in one batch holds back its aggregate's rows in
// the batches after it; and a row a long transaction commits late, below
// where the reading got to, is found by the next pass.
func TestRelay_PipelinedBatchesKeepOrderAndHolds(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	long, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lateID, err := Add(ctx, long, ev("T", "late", `{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	other := pgtestConn(t, url)
	want := map[string][]string{}
	for v := range 12 {
		for _, agg := range []string{"a", "b", "c", "poisoned"} {
			data := fmt.Sprintf(`{"v":%d}`, v)
			if agg == "poisoned" && v == 2 {
				data = `{"poison":true}`
			}
			ids := addTx(t, other, true, ev("T", agg, data))
			want[agg] = append(want[agg], ids...)
		}
	}
	pub := &fakePublisher{}
	pub.setRefuse(func(ev event.Event) error {
		if strings.Contains(string(ev.Data), "poison") {
			return errNack
		}
		return nil
	})
	startRelay(t, Config{DatabaseURL: url, Batch: 5, MaxAttempts: 1000}, pub)
	eventually(t, "the three clean aggregates and the poisoned one's first two rows", func() bool {
		return len(pub.ids()) == 3*12+2
	})
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the late row", func() bool { return len(pub.ids()) == 3*12+3 })
	time.Sleep(300 * time.Millisecond) // several passes: nothing of the held aggregate may follow
	got := map[string][]string{}
	for _, e := range pub.events() {
		got[e.AggregateID] = append(got[e.AggregateID], e.ID)
	}
	for _, agg := range []string{"a", "b", "c"} {
		if fmt.Sprint(got[agg]) != fmt.Sprint(want[agg]) {
			t.Errorf("aggregate %s published as %v, want %v", agg, got[agg], want[agg])
		}
	}
	if fmt.Sprint(got["poisoned"]) != fmt.Sprint(want["poisoned"][:2]) {
		t.Errorf("the held aggregate published %v, want its first two rows only", got["poisoned"])
	}
	if fmt.Sprint(got["late"]) != fmt.Sprint([]string{lateID}) {
		t.Errorf("the late row: %v", got["late"])
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 10 {
		t.Errorf("%d rows left, want the poisoned aggregate's 10 from its refused row on", n)
	}
}
