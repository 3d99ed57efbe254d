package outbox

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// Rows of committed transactions are published and deleted; a rolled-back
// transaction's rows never are; a row a long transaction commits after later
// rows were sent is still found.
func TestRelay_PublishesCommittedRowsOnly(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	want := addTx(t, conn, true, ev("CardAdded", "lib-1", `{"card":1}`), ev("CardAdded", "lib-2", `{"card":2}`))
	rolledBack := addTx(t, conn, false, ev("CardAdded", "lib-3", `{"card":3}`))

	// A long transaction takes a sequence number before the others commit.
	ctx := context.Background()
	long, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lateID, err := Add(ctx, long, ev("CardAdded", "lib-9", `{"late":true}`))
	if err != nil {
		t.Fatal(err)
	}

	other := pgtestConn(t, url)
	want = append(want, addTx(t, other, true, ev("LibraryOpened", "", `{}`))...)
	r := startRelay(t, Config{DatabaseURL: url}, pub)
	eventually(t, "the committed rows published", func() bool { return sameIDs(pub.ids(), want) })
	eventually(t, "them settled", func() bool { return count(t, other, "SELECT count(*) FROM eventfleet_outbox") == 0 })

	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, lateID)
	eventually(t, "the late commit's row published", func() bool { return sameIDs(pub.ids(), want) })
	for _, id := range pub.ids() {
		if slices.Contains(rolledBack, id) {
			t.Fatalf("published %s of a rolled-back transaction", id)
		}
	}
	// Published counts settled rows: it follows the publish.
	eventually(t, "every row counted as published", func() bool {
		s := r.Stats()
		return s.Published == int64(len(want)) && s.Leader
	})
}

// What the relay publishes is the event Add wrote, field by field.
func TestRelay_PublishesTheEventAsAdded(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	in := event.Event{ID: "0193a5d0-0000-7000-8000-000000000001", Type: "CardAdded", AggregateID: "lib-1", Source: "catalog",
		Time: at, Data: []byte(`{"b": 1, "a": [1, 2]}`), Headers: map[string]any{"traceparent": "00-abc-def-01", "n": 7}}
	addTx(t, conn, true, in)
	startRelay(t, Config{DatabaseURL: url}, pub)
	eventually(t, "the row published", func() bool { return len(pub.ids()) == 1 })
	got := pub.events()[0]
	if got.ID != in.ID || got.Type != in.Type || got.AggregateID != in.AggregateID || got.Source != in.Source ||
		!got.Time.Equal(at) || string(got.Data) != string(in.Data) {
		t.Fatalf("published %+v\nadded     %+v", got, in)
	}
	if got.Headers["traceparent"] != "00-abc-def-01" || got.Headers["n"] != int64(7) {
		t.Fatalf("headers %#v", got.Headers)
	}
}

// One aggregate's rows go out in order, each after the previous one's confirm; a refused row holds
// back its aggregate only, and is set aside after MaxAttempts refusals while
// the broker takes other rows (other traffic keeps flowing here), after
// which the aggregate's later rows wait behind it while others flow.
func TestRelay_OrderAndARefusedRow(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	poison := "p-1"
	pub.setRefuse(func(ev event.Event) error {
		if strings.Contains(string(ev.Data), poison) {
			return errNack
		}
		return nil
	})
	var a, b []string
	for i := range 5 {
		a = append(a, addTx(t, conn, true, ev("T", "agg-a", `{"i":`+string(rune('0'+i))+`}`))...)
	}
	b = append(b, addTx(t, conn, true, ev("T", "agg-b", `{"x":"`+poison+`"}`))...)
	b = append(b, addTx(t, conn, true, ev("T", "agg-b", `{"after":"poison"}`))...)
	c := addTx(t, conn, true, ev("T", "agg-c", `{}`))
	// Other aggregates' rows keep coming, so that the broker is seen taking
	// rows while it refuses the poison one.
	traffic := pgtestConn(t, url)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			tx, err := traffic.Begin(context.Background())
			if err != nil {
				return
			}
			_, _ = Add(context.Background(), tx, ev("T", fmt.Sprintf("traffic-%d", i), `{}`))
			_ = tx.Commit(context.Background())
		}
	}()
	defer func() { close(stop); <-done }()
	ours := func(sets ...[]string) []string {
		var out []string
		for _, id := range pub.ids() {
			for _, set := range sets {
				if slices.Contains(set, id) {
					out = append(out, id)
				}
			}
		}
		return out
	}

	r := startRelay(t, Config{DatabaseURL: url, MaxAttempts: 3, Backoff: retry.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}, pub)
	eventually(t, "agg-a and agg-c published", func() bool { return len(ours(a, c)) == 6 })
	eventually(t, "the refused row set aside", func() bool { return r.Stats().SetAside == 1 })
	if got := ours(b); len(got) != 0 {
		t.Fatalf("published %v of the aggregate held back by its refused row", got)
	}
	if order := ours(a); !slices.Equal(order, a) {
		t.Fatalf("agg-a published in order %v, want %v", order, a)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox_set_aside WHERE aggregate_id = 'agg-b' AND attempts = 3"); n != 1 {
		t.Fatalf("%d set-aside rows for agg-b with 3 attempts", n)
	}
	// Later rows of agg-b stay, unpublished, behind it.
	time.Sleep(200 * time.Millisecond) // several poll intervals: nothing must change
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE aggregate_id = 'agg-b'"); n != 2 {
		t.Fatalf("%d rows of agg-b left, want the set-aside one and the one behind it", n)
	}
	if got := ours(b); len(got) != 0 {
		t.Fatalf("published %v of agg-b after the set-aside", got)
	}
	// Releasing it (what an operator's retry does) lets the aggregate go on,
	// in order.
	pub.setRefuse(nil)
	if _, err := conn.Exec(context.Background(), "DELETE FROM eventfleet_outbox_set_aside"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "agg-b published after the release", func() bool { return len(ours(b)) == 2 })
	if got := ours(b); !slices.Equal(got, b) {
		t.Fatalf("agg-b published as %v, want %v", got, b)
	}
}

// A row that can never be published is set aside at once, with the reason.
func TestRelay_InvalidRowSetAsideAtOnce(t *testing.T) {
	url, conn := migrated(t)
	pub := &fakePublisher{}
	if _, err := conn.Exec(context.Background(),
		`INSERT INTO eventfleet_outbox (id, aggregate_id, type, data, headers) VALUES ('x1', 'agg', 'Bad#Type', '{}', '{}'),
			('x2', 'agg', 'T', '{}', '{"nested": {"a": 1}}'), ('x3', 'other', 'T', '{}', '{}')`); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, Config{DatabaseURL: url}, pub)
	eventually(t, "the good row published", func() bool { return slices.Equal(pub.ids(), []string{"x3"}) })
	eventually(t, "the bad row set aside", func() bool { return r.Stats().SetAside == 1 })
	var reason string
	if err := conn.QueryRow(context.Background(), "SELECT reason FROM eventfleet_outbox_set_aside").Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "invalid event type") {
		t.Fatalf("reason %q", reason)
	}
	// The row behind it, itself unpublishable too, waits: set aside is only
	// what was tried.
	time.Sleep(200 * time.Millisecond)
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 2 {
		t.Fatalf("%d rows left, want the set-aside one and the one behind it", n)
	}
}

// Of two relays on one table, one publishes; when it stops, the other takes
// over within about its takeover interval.
func TestRelay_OneLeaderAndTakeover(t *testing.T) {
	url, conn := migrated(t)
	pub1, pub2 := &fakePublisher{}, &fakePublisher{}
	r1 := startRelay(t, Config{DatabaseURL: url, Takeover: 50 * time.Millisecond}, pub1)
	eventually(t, "relay 1 leading", func() bool { return r1.Stats().Leader })
	r2 := startRelay(t, Config{DatabaseURL: url, Takeover: 50 * time.Millisecond}, pub2)
	first := addTx(t, conn, true, ev("T", "a", `{}`), ev("T", "b", `{}`))
	eventually(t, "relay 1 publishing", func() bool { return sameIDs(pub1.ids(), first) })
	if r2.Stats().Leader || len(pub2.ids()) != 0 {
		t.Fatalf("relay 2 %+v published %v while relay 1 leads", r2.Stats(), pub2.ids())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "relay 2 leading", func() bool { return r2.Stats().Leader })
	second := addTx(t, conn, true, ev("T", "a", `{}`))
	eventually(t, "relay 2 publishing", func() bool { return sameIDs(pub2.ids(), second) })
}

// A row written by hand without an id is published under an id derived
// from its table and seq: the same id every time it is published.
func TestRelay_RowWithoutIDGetsAStableID(t *testing.T) {
	url, conn := migrated(t)
	if _, err := conn.Exec(context.Background(), `INSERT INTO eventfleet_outbox (id, type, data) VALUES ('', 'T', '{}')`); err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := conn.QueryRow(context.Background(), "SELECT seq FROM eventfleet_outbox").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	startRelay(t, Config{DatabaseURL: url}, pub)
	want := fmt.Sprintf("eventfleet_outbox:%d", seq)
	eventually(t, "the row published under its derived id", func() bool { return slices.Equal(pub.ids(), []string{want}) })
}
