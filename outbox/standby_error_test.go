package outbox

import (
	"context"
	"testing"
	"time"
)

// A standby whose connection dropped once reconnects and stands by again;
// its LastError (what publisher relay's /readyz reports for a standby) must
// clear then. It cleared only after a scan, which a standby never does, so
// one blip left the standby unready until it became the leader.
func TestRelay_StandbyRecoversFromAConnectionLoss(t *testing.T) {
	url, conn := migrated(t)
	cfg := Config{DatabaseURL: url, Takeover: 50 * time.Millisecond}
	r1 := startRelay(t, cfg, &fakePublisher{})
	eventually(t, "relay 1 leading", func() bool { return r1.Stats().Leader })
	r2 := startRelay(t, cfg, &fakePublisher{})
	ctx := context.Background()
	others := func() int {
		return count(t, conn, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	}
	eventually(t, "both relays connected", func() bool { return others() == 2 })
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`).Scan(&pid); err != nil {
		t.Fatalf("the standby's backend: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the standby's loss noted", func() bool { return r2.LastError() != nil })
	eventually(t, "the standby connected again", func() bool { return others() == 2 })
	eventually(t, "the standby's error cleared", func() bool { return r2.LastError() == nil })
	if r2.Stats().Leader || !r1.Stats().Leader {
		t.Fatalf("relay 1 %+v, relay 2 %+v: the leader should not have changed", r1.Stats(), r2.Stats())
	}
}
