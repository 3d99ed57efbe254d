package outbox

import (
	"context"
	"testing"
)

func TestSetAside_ListRetryDiscard(t *testing.T) {
	_, conn := migrated(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data) VALUES
		('e1', 'a', 'T', '{}'), ('e2', 'b', 'T', '{}'), ('e3', 'c', 'T', '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts)
		SELECT seq::text, aggregate_id, 'test: refused', 10 FROM eventfleet_outbox`); err != nil {
		t.Fatal(err)
	}
	rows, err := ListSetAside(ctx, conn, DefaultTable)
	if err != nil || len(rows) != 3 || rows[0].Reason != "test: refused" || rows[0].Attempts != 10 {
		t.Fatalf("ListSetAside = %+v, %v", rows, err)
	}
	if n, err := RetrySetAside(ctx, conn, DefaultTable, []string{rows[0].Key}); err != nil || n != 1 {
		t.Fatalf("RetrySetAside = %d, %v", n, err)
	}
	if n, err := DiscardSetAside(ctx, conn, DefaultTable, FormatEventfleet, []string{rows[1].Key}); err != nil || n != 1 {
		t.Fatalf("DiscardSetAside = %d, %v", n, err)
	}
	// Released: row 1 is back in the outbox and not set aside; discarded:
	// row 2 is gone from both; row 3 untouched.
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 2 {
		t.Fatalf("%d outbox rows, want 2", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox_set_aside"); n != 1 {
		t.Fatalf("%d set-aside rows, want 1", n)
	}
	if n, err := DiscardSetAside(ctx, conn, DefaultTable, FormatEventfleet, nil); err != nil || n != 1 {
		t.Fatalf("DiscardSetAside(all) = %d, %v", n, err)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE id = 'e3'"); n != 0 {
		t.Fatal("discarding all kept e3")
	}
}
