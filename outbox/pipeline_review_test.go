package outbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// relayIdleAfterReadAhead reports whether the relay's connection last ran a
// read-ahead scan (rows after a seq) and is idle: the pass is waiting for
// the batch in flight.
func relayIdleAfterReadAhead(t *testing.T, c *pgx.Conn) bool {
	return count(t, c, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND state = 'idle' AND query LIKE '%o.seq > $2%'`) > 0
}

// A row a long transaction commits below the read-ahead cursor, followed by
// a later row of its aggregate above it, both committed while a batch is in
// flight: one snapshot (the pass before pipelining) sees both or neither, but
// the read-ahead scan sees the later row only, and publishes it before the
// earlier one, which the next pass finds.
func TestRelay_PipelinedLateCommitBelowTheCursorKeepsAggregateOrder(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	long, err := pgtest.Conn(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := Add(ctx, long, ev("T", "acct", `{"v":1}`)) // seq 1, committed late
	if err != nil {
		t.Fatal(err)
	}
	addTx(t, conn, true, ev("T", "b", `{}`), ev("T", "b", `{}`)) // batch 1: seq 2, 3
	addTx(t, conn, true, ev("T", "c", `{}`), ev("T", "c", `{}`)) // batch 2: seq 4, 5 (read ahead)
	pub := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	startRelay(t, Config{DatabaseURL: url, Batch: 2}, pub)
	<-pub.entered
	eventually(t, "batch 2 read ahead while batch 1 is in flight", func() bool { return relayIdleAfterReadAhead(t, conn) })
	// The app serializes the aggregate's transactions: the first commits,
	// then the second writes its row (seq 6), above the cursor.
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	second := addTx(t, conn, true, ev("T", "acct", `{"v":2}`))[0]
	close(pub.gate)
	eventually(t, "every row published", func() bool { return len(pub.ids()) == 6 })
	var got []string
	for _, e := range pub.events() {
		if e.AggregateID == "acct" {
			got = append(got, e.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{first, second}) {
		t.Fatalf("aggregate acct published as %v, want %v (its order)", got, []string{first, second})
	}
}

// Stop during a pipelined pass finishes the batch in flight and reads no
// further: the rest of the backlog is left to the next relay, as when a pass
// was one batch.
func TestRelay_StopDuringAPipelinedPassStopsReadingOn(t *testing.T) {
	url, conn := migrated(t)
	for range 10 {
		addTx(t, conn, true, ev("T", "", `{}`), ev("T", "", `{}`), ev("T", "", `{}`))
	}
	pub := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	r := startRelay(t, Config{DatabaseURL: url, Batch: 5}, pub)
	<-pub.entered
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.Stop(ctx)
	}()
	eventually(t, "the relay stopping", func() bool { return r.life.IsStopping() })
	close(pub.gate)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := len(pub.ids()); n != 5 {
		t.Fatalf("%d rows published after Stop, want the batch in flight (5)", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 25 {
		t.Fatalf("%d rows left, want 25", n)
	}
}

// event_store is read one batch a pass: a batch that was all the rows of an
// aggregate held back by a refused row (waiting for its next try) kept
// every later aggregate waiting too. The scan leaves waiting rows'
// aggregates out, so other aggregates flow while a refused row waits.
func TestRelay_EventStoreHeldAggregateDoesNotStarveOthers(t *testing.T) {
	url, conn := eventStoreDB(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	for v := 1; v <= 4; v++ {
		data := `{}`
		if v == 1 {
			data = `{"poison":true}`
		}
		if _, err := conn.Exec(ctx, `INSERT INTO event_store (aggregate_id, event_type, event_data, version, timestamp)
			VALUES ('held', 'T', $1, $2, $3)`, data, v, at.Add(time.Duration(v)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO event_store (aggregate_id, event_type, event_data, version, timestamp)
		VALUES ('other', 'T', '{}', 1, $1)`, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	pub.setRefuse(func(ev event.Event) error {
		if strings.Contains(string(ev.Data), "poison") {
			return errNack
		}
		return nil
	})
	startRelay(t, Config{DatabaseURL: url, Format: FormatEventStore, Table: "event_store", Batch: 2, MaxAttempts: 1000}, pub)
	eventually(t, "the other aggregate published while the held one waits", func() bool {
		for _, e := range pub.events() {
			if e.AggregateID == "other" {
				return true
			}
		}
		return false
	})
}

// A hard stop while the read-ahead scan runs: the scan was on the halt
// context, and pgx closes a connection whose query is cancelled, so the
// batch confirmed meanwhile could not be settled (and was dropped unread).
// Rows confirmed are settled even during a hard stop, as before pipelining.
func TestRelay_HaltDuringTheReadAheadSettlesWhatWasConfirmed(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	for range 4 {
		addTx(t, conn, true, ev("T", "", `{}`), ev("T", "", `{}`))
	}
	// A scan reads the side table when it has rows (here a row of another
	// aggregate): an exclusive lock on it makes the next read-ahead wait
	// while its batch is published.
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts)
		VALUES ('999', 'parked', 'test', 10)`); err != nil {
		t.Fatal(err)
	}
	pub := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	r := startRelay(t, Config{DatabaseURL: url, Batch: 2}, pub)
	<-pub.entered
	lock, err := pgtest.Conn(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback(ctx) }()
	if _, err := lock.Exec(ctx, "LOCK TABLE eventfleet_outbox_set_aside IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	close(pub.gate)
	eventually(t, "a read-ahead waiting for the lock", func() bool {
		return count(t, conn, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%o.seq > $2%'`) > 0
	})
	stopped := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		stopped <- r.Stop(sctx)
	}()
	eventually(t, "the relay halting", func() bool { return r.life.State() >= lifecycle.Halting })
	_ = lock.Rollback(ctx)
	<-stopped
	published := len(pub.ids())
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 8-published {
		t.Fatalf("%d rows left after %d of 8 were confirmed: confirmed rows not settled", n, published)
	}
}

// An operator releasing a set-aside row (set-aside retry) while a pass reads
// ahead: the pass never saw the released row (below the cursor, filtered by
// the first scan), and the read-ahead saw its aggregate's later row (above
// the cursor) and published it first. The aggregate is held for the pass
// instead; the next pass publishes both, in order.
func TestRelay_SetAsideReleasedMidPassKeepsAggregateOrder(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	first := addTx(t, conn, true, ev("T", "acct", `{"v":1}`))[0]                     // seq 1, set aside
	addTx(t, conn, true, ev("T", "b", `{}`), ev("T", "b", `{}`))                     // batch 1: seq 2, 3
	addTx(t, conn, true, ev("T", "c", `{}`), ev("T", "c", `{}`))                     // batch 2: seq 4, 5
	second := addTx(t, conn, true, ev("T", "acct", `{"v":2}`), ev("T", "", `{}`))[0] // batch 3: seq 6, 7
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts)
		VALUES ('1', 'acct', 'test', 10)`); err != nil {
		t.Fatal(err)
	}
	pub := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	startRelay(t, Config{DatabaseURL: url, Batch: 2}, pub)
	<-pub.entered
	eventually(t, "batch 2 read ahead while batch 1 is in flight", func() bool { return relayIdleAfterReadAhead(t, conn) })
	if _, err := conn.Exec(ctx, "DELETE FROM eventfleet_outbox_set_aside"); err != nil { // what set-aside retry does
		t.Fatal(err)
	}
	close(pub.gate)
	eventually(t, "every row published", func() bool { return len(pub.ids()) == 7 })
	var got []string
	for _, e := range pub.events() {
		if e.AggregateID == "acct" {
			got = append(got, e.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{first, second}) {
		t.Fatalf("aggregate acct published as %v, want %v (its order)", got, []string{first, second})
	}
}

// Setting a row aside fails with the connection still open (here a trigger;
// in production a server-side statement_timeout, a lock timeout): the
// session ends, and the rows of the batch confirmed meanwhile used to be
// dropped unsettled, to be published again by the next session, forever
// while the failure lasts. They are settled on the way out.
func TestRelay_SetAsideStatementFailsSettlesTheConfirmedRows(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE FUNCTION refuse_set_aside() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'test: no row can be set aside';
END $$;
CREATE TRIGGER refuse_set_aside BEFORE INSERT ON eventfleet_outbox_set_aside FOR EACH ROW EXECUTE FUNCTION refuse_set_aside()`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, type, data) VALUES ('bad', 'Bad#Type', '{}'), ('good', 'T', '{}')`); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	r := startRelay(t, Config{DatabaseURL: url}, pub)
	eventually(t, "setting the bad row aside failing", func() bool {
		err := r.LastError()
		return err != nil && strings.Contains(err.Error(), "no row can be set aside")
	})
	eventually(t, "the good row settled", func() bool {
		return count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE id = 'good'") == 0
	})
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE id = 'bad'"); n != 1 {
		t.Fatalf("%d bad rows left, want 1 (it cannot be set aside, nor published)", n)
	}
}

// A settle that fails with the connection still open: the batch in flight,
// confirmed meanwhile, is left unsettled too. Settling it would leave its
// aggregates' earlier rows (in the batch that failed) to be published again
// after their later rows.
func TestRelay_SettleStatementFailsLeavesTheBatchInFlight(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE FUNCTION refuse_seq_1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'test: seq 1 cannot be settled';
END $$;
CREATE TRIGGER refuse_seq_1 BEFORE DELETE ON eventfleet_outbox FOR EACH ROW WHEN (OLD.seq = 1) EXECUTE FUNCTION refuse_seq_1()`); err != nil {
		t.Fatal(err)
	}
	addTx(t, conn, true, ev("T", "acct", `{"v":1}`), ev("T", "b", `{}`)) // batch 1: seq 1, 2; its settle fails
	addTx(t, conn, true, ev("T", "acct", `{"v":2}`), ev("T", "c", `{}`)) // batch 2: seq 3, 4, in flight meanwhile
	pub := &fakePublisher{}
	r := startRelay(t, Config{DatabaseURL: url, Batch: 2}, pub)
	eventually(t, "the settle failing", func() bool {
		err := r.LastError()
		return err != nil && strings.Contains(err.Error(), "seq 1 cannot be settled")
	})
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 4 {
		t.Fatalf("%d rows left, want all 4 (batch 2 settled while batch 1 is not)", n)
	}
}
