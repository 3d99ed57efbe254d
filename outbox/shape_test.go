package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/pgtest"
	"github.com/eventfleet/eventfleet/retry"
)

var fastBackoff = retry.Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}

// waitRefused waits until the relay's last error is want and says all of
// says, and checks that the relay never led meanwhile (nor holds a lock).
func waitRefused(t *testing.T, r *Relay, want error, says ...string) {
	t.Helper()
	refused := func() bool {
		err := r.LastError()
		if !errors.Is(err, want) {
			return false
		}
		for _, s := range says {
			if !strings.Contains(err.Error(), s) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(20 * time.Second); !refused(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the table refused with %v saying %q; the last error: %v", want, says, r.LastError())
		}
	}
	if r.Stats().Leader {
		t.Fatal("the relay leads a table it refused")
	}
}

// The default format named at an event_store table (OUTBOX_FORMAT
// forgotten) is refused before the relay takes the table, naming the
// missing columns and the fix, and retried; nothing is published or
// changed.
func TestRelay_WrongFormatForTheTable(t *testing.T) {
	url, conn := eventStoreDB(t)
	if _, err := conn.Exec(context.Background(), `INSERT INTO event_store (aggregate_id, event_type, event_data, "timestamp") VALUES ('a', 'CardAddedToLibraryEvent', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	r := startRelay(t, Config{DatabaseURL: url, Table: "event_store", Backoff: fastBackoff}, pub)
	waitRefused(t, r, ErrTableShape, "table event_store has no column seq, type, data, headers, source, occurred_at", "set OUTBOX_FORMAT=event_store")
	if n := count(t, conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); n != 0 {
		t.Fatalf("%d advisory locks held on a refused table", n)
	}
	if n := len(pub.events()); n != 0 || count(t, conn, "SELECT count(*) FROM event_store WHERE processed") != 0 {
		t.Fatalf("a refused table was published from (%d events)", n)
	}

	// And the other way round.
	url2, _ := migrated(t)
	r2 := startRelay(t, Config{DatabaseURL: url2, Table: DefaultTable, Format: FormatEventStore, Backoff: fastBackoff}, &fakePublisher{})
	waitRefused(t, r2, ErrTableShape, "has no column event_type, event_data, version, timestamp, processed, created_at", "set OUTBOX_FORMAT=eventfleet")
}

// event_store's side table is made by `relay migrate`; a relay started
// before it names the command, and leads once it is there.
func TestRelay_EventStoreSideTableMissing(t *testing.T) {
	url, conn := eventStoreTable(t)
	ctx := context.Background()
	r := startRelay(t, Config{DatabaseURL: url, Table: "event_store", Format: FormatEventStore, Backoff: fastBackoff}, &fakePublisher{})
	waitRefused(t, r, ErrTableMissing, `"event_store_set_aside"`, "publisher relay migrate", "OUTBOX_FORMAT=event_store")
	if err := Migrate(ctx, conn, "event_store", FormatEventStore); err != nil {
		t.Fatal(err)
	}
	eventually(t, "leading once the side table exists", func() bool { return r.Stats().Leader })
	if err := r.LastError(); err != nil {
		t.Fatalf("last error still %v while leading", err)
	}
}

// An event_store table without created_at can be published, only not
// pruned: the relay says so, and runs with pruning off.
func TestRelay_EventStoreWithoutCreatedAt(t *testing.T) {
	url, conn := eventStoreDB(t)
	if _, err := conn.Exec(context.Background(), `ALTER TABLE event_store DROP COLUMN created_at`); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, Config{DatabaseURL: url, Table: "event_store", Format: FormatEventStore, Backoff: fastBackoff}, &fakePublisher{})
	waitRefused(t, r, ErrTableShape, "has no column created_at", "OUTBOX_RETENTION=0")

	pub := &fakePublisher{}
	startRelay(t, Config{DatabaseURL: url, Table: "event_store", Format: FormatEventStore, KeepProcessed: true, Backoff: fastBackoff}, pub)
	if _, err := conn.Exec(context.Background(), `INSERT INTO event_store (aggregate_id, event_type, event_data, "timestamp") VALUES ('a', 'CardAddedToLibraryEvent', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the row published with pruning off", func() bool {
		return len(pub.events()) == 1 && count(t, conn, "SELECT count(*) FROM event_store WHERE processed") == 1
	})
}

// A side table that is not one (an app's own table of that name) is
// refused, named, rather than written to.
func TestRelay_SideTableOfTheWrongShape(t *testing.T) {
	url := pgtest.Database(t)
	conn := pgtest.Conn(t, url)
	ctx := context.Background()
	if err := Migrate(ctx, conn, DefaultTable, FormatEventfleet); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DROP TABLE eventfleet_outbox_set_aside; CREATE TABLE eventfleet_outbox_set_aside (id int)`); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, Config{DatabaseURL: url, Backoff: fastBackoff}, &fakePublisher{})
	waitRefused(t, r, ErrTableShape, `side table "eventfleet_outbox_set_aside" has no column row_key`)
}
