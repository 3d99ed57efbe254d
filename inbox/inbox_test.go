package inbox

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

// setup is a fresh database with the inbox and an app table the handler
// writes to, and a pool on it.
func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := pgtest.Database(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx := context.Background()
	if err := Migrate(ctx, pool, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE cards (id serial PRIMARY KEY, event_id text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// addCard is the app's handler: one row per call.
func addCard(calls *int, mu *sync.Mutex) Func {
	return func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		mu.Lock()
		*calls++
		mu.Unlock()
		_, err := tx.Exec(ctx, `INSERT INTO cards (event_id) VALUES ($1)`, ev.ID)
		return err
	}
}

func cards(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM cards`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHandle_ASecondDeliveryChangesNothing(t *testing.T) {
	pool := setup(t)
	var calls int
	var mu sync.Mutex
	h, err := New(Config{DB: pool, App: "library"}, addCard(&calls, &mu))
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Event{ID: "e1", Source: "catalog", Type: "CardAdded", Data: []byte(`{}`)}
	for range 3 {
		if err := h.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 || cards(t, pool) != 1 {
		t.Fatalf("%d calls, %d rows for three deliveries of one event", calls, cards(t, pool))
	}
	// The same id from another source is another event; another app sharing
	// the database handles it too.
	if err := h.Handle(context.Background(), event.Event{ID: "e1", Source: "billing", Type: "T"}); err != nil {
		t.Fatal(err)
	}
	other, _ := New(Config{DB: pool, App: "search"}, addCard(&calls, &mu))
	if err := other.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || cards(t, pool) != 3 {
		t.Fatalf("%d calls, %d rows; want 3 each", calls, cards(t, pool))
	}
}

// A failing handler records nothing and keeps none of its writes: the retry
// runs it again.
func TestHandle_FailureRecordsNothing(t *testing.T) {
	pool := setup(t)
	fail := errors.New("downstream unavailable")
	calls := 0
	h, _ := New(Config{DB: pool, App: "library"}, func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		calls++
		if _, err := tx.Exec(ctx, `INSERT INTO cards (event_id) VALUES ($1)`, ev.ID); err != nil {
			return err
		}
		if calls == 1 {
			return fail
		}
		return nil
	})
	ev := event.Event{ID: "e1", Type: "T"}
	if err := h.Handle(context.Background(), ev); !errors.Is(err, fail) {
		t.Fatalf("first delivery: %v, want the handler's error", err)
	}
	if cards(t, pool) != 0 {
		t.Fatal("the failed call's write was kept")
	}
	if err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || cards(t, pool) != 1 {
		t.Fatalf("%d calls, %d rows; want the retry to run once more and keep one row", calls, cards(t, pool))
	}
}

// Deliveries of one event at once (redelivered while the first still runs,
// or two workers) run the handler once.
func TestHandle_ConcurrentDuplicatesRunOnce(t *testing.T) {
	pool := setup(t)
	var calls int
	var mu sync.Mutex
	h, _ := New(Config{DB: pool, App: "library"}, addCard(&calls, &mu))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Handle(context.Background(), event.Event{ID: "same", Type: "T"})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || cards(t, pool) != 1 {
		t.Fatalf("%d calls, %d rows for 8 concurrent deliveries", calls, cards(t, pool))
	}
}

func TestPrune(t *testing.T) {
	pool := setup(t)
	h, _ := New(Config{DB: pool, App: "library"}, func(context.Context, pgx.Tx, event.Event) error { return nil })
	ctx := context.Background()
	for _, id := range []string{"old", "new"} {
		if err := h.Handle(ctx, event.Event{ID: id, Type: "T"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE eventfleet_inbox SET handled_at = now() - interval '31 days' WHERE event_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	n, err := h.Prune(ctx, pool)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
}

func TestNew_RefusesBadConfig(t *testing.T) {
	fn := func(context.Context, pgx.Tx, event.Event) error { return nil }
	for _, cfg := range []Config{{App: "a"}, {DB: &pgxpool.Pool{}}, {DB: &pgxpool.Pool{}, App: "a", Table: "x; DROP"}} {
		if _, err := New(cfg, fn); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// The handled_at index was "<schema>_<table>_handled_at", truncated by
// PostgreSQL to 63 bytes: two inbox tables of one schema whose names differ
// only after that got one index between them (the second was skipped).
func TestMigrate_LongTableNamesEachGetAnIndex(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.Database(t))
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA library_service_v2"); err != nil {
		t.Fatal(err)
	}
	const prefix = "library_service_v2.inbox_records_kept_for_the_library_handlers_no_" // table: 47 bytes + 1
	names := []string{prefix + "a", prefix + "b"}
	for _, name := range names {
		if err := Migrate(ctx, conn, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*)::int FROM pg_indexes WHERE schemaname || '.' || tablename = $1
			AND indexdef LIKE '%(handled_at)'`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s: %d indexes on handled_at, want 1", name, n)
		}
	}
}
