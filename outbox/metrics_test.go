package outbox

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestRelay_Metrics(t *testing.T) {
	url, conn := migrated(t)
	m := metrics.New()
	if _, err := conn.Exec(t.Context(), `INSERT INTO eventfleet_outbox_set_aside (row_key, aggregate_id, reason, attempts)
		VALUES ('999', 'held', 'test', 1)`); err != nil {
		t.Fatal(err)
	}
	addTx(t, conn, true, ev("T", "a", `{}`), ev("T", "b", `{}`))
	startRelay(t, Config{DatabaseURL: url, Metrics: m}, &fakePublisher{})
	for _, want := range []string{
		`eventfleet_outbox_published_total{table="eventfleet_outbox"} 2`,
		`eventfleet_outbox_leader{table="eventfleet_outbox"} 1`,
		`eventfleet_outbox_pending_rows{table="eventfleet_outbox"} 0`,
		`eventfleet_outbox_set_aside_rows{table="eventfleet_outbox"} 1`,
	} {
		eventually(t, want, func() bool { return strings.Contains(scrape(t, m), want) })
	}
}

// A relay that loses the table stands by, and its backlog gauges must say
// nothing then: they kept the last sample taken while leading, so a standby
// reported a backlog that had long been published by the new leader.
func TestRelay_StandbyReportsNoStaleBacklog(t *testing.T) {
	url, conn := migrated(t)
	ctx := context.Background()
	m := metrics.New()
	pub := &fakePublisher{refuse: func(event.Event) error { return errNack }} // every row stays pending
	addTx(t, conn, true, ev("T", "a", `{}`), ev("T", "b", `{}`), ev("T", "c", `{}`))
	r := startRelay(t, Config{DatabaseURL: url, Metrics: m, Takeover: 50 * time.Millisecond}, pub)
	const pending = `eventfleet_outbox_pending_rows{table="eventfleet_outbox"} 3`
	eventually(t, pending, func() bool { return strings.Contains(scrape(t, m), pending) })

	// Take the table from the relay: wait for its lock, then end its session;
	// the waiting lock is granted before the relay can reconnect.
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	key, _, err := r.lockKey(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	taker := pgtestConn(t, url)
	locked := make(chan error, 1)
	go func() {
		_, err := taker.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		locked <- err
	}()
	eventually(t, "the lock requested", func() bool {
		return count(t, conn, `SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`) == 1
	})
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	eventually(t, "the relay standing by", func() bool {
		return !r.Stats().Leader && count(t, conn, `SELECT count(*)::int FROM pg_stat_activity
			WHERE datname = current_database() AND pid NOT IN ($1, pg_backend_pid()) AND backend_type = 'client backend'`, pid) == 2
	})
	out := scrape(t, m)
	if !strings.Contains(out, `eventfleet_outbox_leader{table="eventfleet_outbox"} 0`) {
		t.Fatalf("not a standby in the metrics:\n%s", out)
	}
	for _, gauge := range []string{"eventfleet_outbox_pending_rows{", "eventfleet_outbox_oldest_pending_seconds{", "eventfleet_outbox_set_aside_rows{"} {
		if strings.Contains(out, gauge) {
			t.Errorf("a standby reports %s", grepLine(out, gauge))
		}
	}
}

func grepLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
