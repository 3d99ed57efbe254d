package outbox

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// The broker nacking every publish (a queue at its max-length with overflow
// reject-publish, as the app's quorum queues are declared, while its
// consumer is down) says nothing about any row: no row may be set aside for
// it. Counting those nacks toward MaxAttempts set every pending row aside
// after MaxAttempts scans (about a minute with the default backoff), each
// blocking its aggregate until an operator released it.
func TestRelay_BrokerRefusingEverythingSetsNothingAside(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	pub.setRefuse(func(event.Event) error { return errNack })
	want := addTx(t, conn, true, ev("T", "a", `{}`), ev("T", "b", `{}`), ev("T", "c", `{}`))
	r := startRelay(t, Config{DatabaseURL: url, MaxAttempts: 3, Backoff: retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}}, pub)
	eventually(t, "several scans refused", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.batch) >= 10 || r.Stats().SetAside > 0
	})
	if s := r.Stats(); s.SetAside != 0 {
		t.Fatalf("%d rows set aside while the broker refused every publish", s.SetAside)
	}
	pub.setRefuse(nil)
	eventually(t, "every row published once the broker takes them", func() bool { return sameIDs(pub.ids(), want) })
	if s := r.Stats(); s.SetAside != 0 {
		t.Fatalf("%d rows set aside while the broker refused every publish", s.SetAside)
	}
}

// A row the broker refuses every time while it takes the others is set aside
// after MaxAttempts, also when each of its tries is alone in its batch (its
// aggregate has no company in the scan): what the broker took between its
// tries tells the refusal is the row's. Counting only nacks that shared a
// batch with a confirm left such a row retried forever.
func TestRelay_RowRefusedAloneWhileOthersGoThroughIsSetAside(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	poison := addTx(t, conn, true, ev("T", "p", `{}`))[0]
	var refusals atomic.Int32
	pub.setRefuse(func(e event.Event) error {
		if e.ID == poison {
			refusals.Add(1)
			return errNack
		}
		return nil
	})
	backoff := 300 * time.Millisecond // each good row goes out while the poison row waits
	r := startRelay(t, Config{DatabaseURL: url, MaxAttempts: 3, Backoff: retry.Backoff{Min: backoff, Max: backoff}}, pub)
	for i := 0; r.Stats().SetAside == 0; i++ {
		n := refusals.Load()
		eventually(t, "the poison row tried again", func() bool { return refusals.Load() > n || r.Stats().SetAside > 0 })
		if r.Stats().SetAside > 0 {
			break
		}
		if refusals.Load() > 1+2*3 {
			t.Fatalf("the row was refused %d times (MaxAttempts 3) while the broker took every other row, and was never set aside",
				refusals.Load())
		}
		good := addTx(t, conn, true, ev("T", fmt.Sprintf("g%d", i), `{}`))[0]
		eventually(t, "a good row published while the poison row waits", func() bool { return slices.Contains(pub.ids(), good) })
	}
	// The first refusal came before the broker had taken anything: it says
	// nothing about the row and does not count; nor does a try that came
	// before the good row went out (a slow machine).
	if got := refusals.Load(); got < 4 {
		t.Fatalf("set aside after %d refusals, want at least 1 + MaxAttempts (3)", got)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox_set_aside"); n != 1 {
		t.Fatalf("%d rows in the set-aside table, want the poison row", n)
	}
}
