package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Messages as the original TypeScript publisher (amqplib) sends them: the
// timestamp property set to Date.now(), milliseconds, as a 64-bit value.
// amqp091 writes Timestamp.Unix() as that value, so time.Unix(ms, 0)
// produces the same bytes.

var foreignInstant = time.Date(2026, 12, 1, 20, 30, 15, 123e6, time.UTC)

func amqplibTimestamp() time.Time { return time.Unix(foreignInstant.UnixMilli(), 0) }

// oddHeaders are header values eventfleet cannot show: none may fail the
// event. (NaN and infinite floats are not among them: RabbitMQ 3.10.8 closes
// the publishing channel for those, so no worker ever receives one.)
func oddHeaders() amqp091.Table {
	return amqp091.Table{
		"x-bytes":   []byte{0, 0xff, '\n'},
		"x-decimal": amqp091.Decimal{Scale: 2, Value: 12345},
		"x-year":    time.Unix(1<<40, 0), // year ~34,800
		"x-nested":  amqp091.Table{"a": amqp091.Table{"b": []any{int32(1), "\x1b[2J"}}},
		"x-ctl":     "a\r\nX-Injected: 1",
	}
}

func TestWorker_LogHandlerReadsMillisecondTimestamps(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "HANDLER=log"))
	p.waitConsuming()

	withID := amqp091.Publishing{ContentType: "application/json", DeliveryMode: amqp091.Persistent, MessageId: "ms-1",
		Type: cardAdded, AppId: "amqplib", Timestamp: amqplibTimestamp(), Headers: oddHeaders(), Body: []byte(`{"card":1}`)}
	// amqplib without messageId, type or content type: the routing key is the type.
	noID := amqp091.Publishing{DeliveryMode: amqp091.Persistent, AppId: "amqplib", Timestamp: amqplibTimestamp(),
		Headers: amqp091.Table{"aggregate_id": "lib-ms"}, Body: []byte(`{"card":2}`)}
	publishTo(t, brokertest.Channel(t), a.exchange, cardAdded, withID, noID)
	brokertest.Eventually(t, 45*time.Second, "2 event lines on stdout", func() bool { return len(p.Stdout.Lines()) >= 2 })
	p.stop(15 * time.Second)

	derived := amqp.DerivedID(a.exchange, cardAdded, amqplibTimestamp(), "amqplib", "lib-ms", noID.Body)
	lines := eventLines(t, p)
	if len(lines) != 2 {
		t.Fatalf("%d event lines, want 2: %+v", len(lines), lines)
	}
	byID := map[string]logLine{}
	for _, l := range lines {
		byID[l.ID] = l
	}
	want := foreignInstant.Format(time.RFC3339Nano)
	for _, id := range []string{"ms-1", derived} {
		l, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("no line for event %s: %+v", id, lines)
		case l.Time != want:
			t.Errorf("event %s: time %q, want %q (Date.now() read as milliseconds)", id, l.Time, want)
		case l.Type != cardAdded || l.Attempt != 1:
			t.Errorf("event %s: line %+v", id, l)
		}
	}
	if n := brokertest.Depth(t, a.dead); n != 0 {
		t.Errorf("%d events dead-lettered, want 0", n)
	}
	checkLogsAreJSON(t, p)
}

// TestWorker_WebhookForeignMessages: an id-less amqplib message keeps its
// derived id on the retry, and envelope values HTTP cannot carry are left out
// of the request instead of failing the event.
func TestWorker_WebhookForeignMessages(t *testing.T) {
	t.Parallel()
	a := newApp(t, 100*time.Millisecond)
	var mu sync.Mutex
	var reqs []http.Header
	failed := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, r.Header.Clone())
		if id := r.Header.Get("X-Event-Id"); r.Header.Get("X-Aggregate-Id") == "retry-me" && !failed[id] {
			failed[id] = true
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	requests := func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reqs)
	}
	p := startWorker(t, a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+srv.URL, "RETRY_DELAYS=100ms", "RETRY_MAX_ATTEMPTS=3"))
	p.waitConsuming()

	noID := amqp091.Publishing{DeliveryMode: amqp091.Persistent, AppId: "amqplib", Timestamp: amqplibTimestamp(),
		Headers: amqp091.Table{"aggregate_id": "retry-me"}, Body: []byte(`{"card":3}`)}
	hostile := amqp091.Publishing{ContentType: "application/json", DeliveryMode: amqp091.Persistent, MessageId: "ctl-1",
		Type: cardAdded, AppId: "legacy\x00", Timestamp: amqplibTimestamp(), Headers: oddHeaders(), Body: []byte(`{"card":4}`)}
	hostile.Headers["aggregate_id"] = "lib\r\nX-Injected: 1"
	publishTo(t, brokertest.Channel(t), a.exchange, cardAdded, noID, hostile)
	brokertest.Eventually(t, 45*time.Second, "3 requests (one a retry)", func() bool { return len(requests()) >= 3 })
	p.stop(15 * time.Second)

	derived := amqp.DerivedID(a.exchange, cardAdded, amqplibTimestamp(), "amqplib", "retry-me", noID.Body)
	var retried, ctl []http.Header
	for _, h := range requests() {
		switch {
		case h.Get("X-Aggregate-Id") == "retry-me":
			retried = append(retried, h)
		case h.Get("X-Event-Id") == "ctl-1":
			ctl = append(ctl, h)
		default:
			t.Errorf("unexpected request %v", h)
		}
	}
	if len(retried) != 2 {
		t.Fatalf("id-less event posted %d times, want 2 (a 503, then its retry)", len(retried))
	}
	for i, h := range retried {
		if got := h.Get("X-Event-Id"); got != derived {
			t.Errorf("attempt %d: X-Event-Id %q, want the derived id %q", i+1, got, derived)
		}
	}
	if len(ctl) != 1 {
		t.Fatalf("event with control characters posted %d times, want once", len(ctl))
	}
	if got := ctl[0].Get("X-Event-Dropped-Headers"); got != "X-Aggregate-Id,X-Event-Source" {
		t.Errorf("X-Event-Dropped-Headers %q, want X-Aggregate-Id,X-Event-Source", got)
	}
	if v := ctl[0].Values("X-Injected"); v != nil || strings.Contains(ctl[0].Get("X-Aggregate-Id"), "lib") {
		t.Errorf("header injection: X-Injected %q, X-Aggregate-Id %q", v, ctl[0].Get("X-Aggregate-Id"))
	}
	for _, q := range []string{a.queue, a.dead, a.queue + ".retry.100ms"} {
		if n := brokertest.Depth(t, q); n != 0 {
			t.Errorf("%d messages left in %s, want 0", n, q)
		}
	}
	checkLogsAreJSON(t, p)
}
