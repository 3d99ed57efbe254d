package outbox

import (
	"context"
	"testing"
)

// A large backlog of old processed event_store rows is pruned a batch at a
// time between passes: a row the app writes meanwhile is published while
// most of them are still there. prune deleted batch after batch until none
// was left, and published nothing meanwhile.
func TestRelay_PruneCatchUpDoesNotHoldUpPublishing(t *testing.T) {
	url, conn := eventStoreDB(t)
	ctx := context.Background()
	const old = 100_000
	if _, err := conn.Exec(ctx, `INSERT INTO event_store (aggregate_id, event_type, event_data, timestamp, processed, created_at)
		SELECT 'old-' || i, 'Old', '{}', now(), true, now() - interval '30 days' FROM generate_series(1, $1) i`, old); err != nil {
		t.Fatal(err)
	}
	oldLeft := func() int { return count(t, conn, "SELECT count(*)::int FROM event_store WHERE event_type = 'Old'") }
	pub := &fakePublisher{}
	startRelay(t, Config{DatabaseURL: url, Format: FormatEventStore}, pub)
	eventually(t, "pruning begun", func() bool { return oldLeft() < old })
	var id string
	if err := conn.QueryRow(ctx, `INSERT INTO event_store (aggregate_id, event_type, event_data, timestamp)
		VALUES ('new', 'New', '{}', now()) RETURNING id::text`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new row published", func() bool { return sameIDs(pub.ids(), []string{id}) })
	if n := oldLeft(); n < old/2 {
		t.Errorf("the new row was published only once %d of %d old rows were pruned", old-n, old)
	}
	eventually(t, "every old row pruned, over several passes", func() bool { return oldLeft() == 0 })
}
