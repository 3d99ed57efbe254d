package outbox

import (
	"context"
	"slices"
	"testing"
)

// A row the scan cannot read into an event (here an occurred_at of
// 'infinity', which PostgreSQL stores and time.Time cannot hold) must not
// stop the relay: it is set aside, and the other aggregates' rows are
// published. Reading it failed the whole scan, so the session ended and
// started again on the same row, forever, publishing nothing.
func TestRelay_UnreadableRowDoesNotBlockTheTable(t *testing.T) {
	url, conn := migrated(t)
	if _, err := conn.Exec(context.Background(),
		`INSERT INTO eventfleet_outbox (id, aggregate_id, type, data, occurred_at) VALUES ('x1', 'agg', 'T', '{}', 'infinity'),
			('x2', 'other', 'T', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	r := startRelay(t, Config{DatabaseURL: url}, pub)
	eventually(t, "the readable row published", func() bool { return slices.Equal(pub.ids(), []string{"x2"}) })
	eventually(t, "the unreadable row set aside", func() bool { return r.Stats().SetAside == 1 })
}
