package outbox

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

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
