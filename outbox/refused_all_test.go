package outbox

import (
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
