package outbox

import (
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// A row the broker keeps refusing holds back its own aggregate only: a row
// of another aggregate committed while it waits for its next try is
// published at once. The backoff after a refused row paused the whole relay,
// so every aggregate waited out each pause (up to Backoff.Max, 30 s by
// default) until the row was set aside.
func TestRelay_RefusedRowDoesNotDelayOtherAggregates(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	pub.setRefuse(func(ev event.Event) error {
		if strings.Contains(string(ev.Data), "poison") {
			return errNack
		}
		return nil
	})
	addTx(t, conn, true, ev("T", "agg-a", `{"poison":true}`))
	r := startRelay(t, Config{DatabaseURL: url, MaxAttempts: 100, Backoff: retry.Backoff{Min: 3 * time.Second, Max: 3 * time.Second}}, pub)
	eventually(t, "the row refused once", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.batch) >= 1
	})
	added := time.Now()
	other := addTx(t, conn, true, ev("T", "agg-b", `{}`))
	eventually(t, "the other aggregate's row published", func() bool { return sameIDs(pub.ids(), other) })
	if took := time.Since(added); took > time.Second {
		t.Fatalf("agg-b's row took %v behind agg-a's refused row (relay %+v)", took.Round(time.Millisecond), r.Stats())
	}
}
