package outbox

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/pgtest"
	"github.com/eventfleet/eventfleet/retry"
)

// The leader's connection is killed from another session (as a failover or
// an operator's pg_terminate_backend does): a relay takes the table again
// within seconds, rows added meanwhile are published, and at no sampled
// moment do both relays lead.
func TestRelay_LeaderConnectionTerminated(t *testing.T) {
	url, conn := migrated(t)
	pub1, pub2 := &fakePublisher{}, &fakePublisher{}
	cfg := Config{DatabaseURL: url, Takeover: 50 * time.Millisecond}
	r1 := startRelay(t, cfg, pub1)
	eventually(t, "relay 1 leading", func() bool { return r1.Stats().Leader })
	r2 := startRelay(t, cfg, pub2)
	done := make(chan struct{})
	both := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			if r1.Stats().Leader && r2.Stats().Leader {
				select {
				case both <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer close(done)
	ctx := context.Background()
	var want []string
	for round := range 3 {
		var pid int
		if err := conn.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid); err != nil {
			t.Fatalf("round %d: the leader's lock: %v", round, err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		want = append(want, addTx(t, conn, true, ev("T", "a", `{}`))...)
		deadline := time.Now().Add(20 * time.Second)
		for !containsAll(append(pub1.ids(), pub2.ids()...), want) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: published %v and %v, want %v; relay 1 %+v (%v), relay 2 %+v (%v)", round, pub1.ids(), pub2.ids(),
					want, r1.Stats(), r1.LastError(), r2.Stats(), r2.LastError())
			}
			time.Sleep(10 * time.Millisecond)
		}
		eventually(t, "a leader again", func() bool {
			return r1.Stats().Leader || r2.Stats().Leader
		})
	}
	// A row whose settle was lost with the connection is published again
	// (at least once): allowed, and logged to show how often.
	if got := len(pub1.ids()) + len(pub2.ids()); got != len(want) {
		t.Logf("%d publishes of %d rows (the rest again after a lost settle)", got, len(want))
	}
	select {
	case <-both:
		t.Fatal("both relays led at once")
	default:
	}
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// Relays that name the table differently (event_store, public.event_store)
// are still one leader and a standby: the lock follows the table, not its
// name.
func TestRelay_OneLeaderWhateverTheTablesName(t *testing.T) {
	url, conn := migrated(t)
	r1 := startRelay(t, Config{DatabaseURL: url, Table: "eventfleet_outbox", Takeover: 50 * time.Millisecond}, &fakePublisher{})
	eventually(t, "relay 1 leading", func() bool { return r1.Stats().Leader })
	r2 := startRelay(t, Config{DatabaseURL: url, Table: "public.eventfleet_outbox", Takeover: 50 * time.Millisecond}, &fakePublisher{})
	eventually(t, "relay 2 standing by", func() bool {
		return count(t, conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 1 &&
			count(t, conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_try_advisory_lock%'") >= 1
	})
	time.Sleep(200 * time.Millisecond) // several takeover attempts: none may succeed
	if r2.Stats().Leader {
		t.Fatal("two relays lead one table under two names")
	}
}

// A table that does not exist is named, with the fix, and retried: the
// relay leads once it is created.
func TestRelay_TableMissingIsNamedAndRetried(t *testing.T) {
	url := pgtest.Database(t)
	r := startRelay(t, Config{DatabaseURL: url, Backoff: retry.Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}}, &fakePublisher{})
	eventually(t, "the missing table named", func() bool {
		err := r.LastError()
		return errors.Is(err, ErrTableMissing) && strings.Contains(err.Error(), "publisher relay migrate")
	})
	if err := Migrate(context.Background(), pgtest.Conn(t, url), DefaultTable, FormatEventfleet); err != nil {
		t.Fatal(err)
	}
	eventually(t, "leading once the table exists", func() bool { return r.Stats().Leader })
}
