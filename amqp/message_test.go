package amqp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	base := amqp091.Delivery{Exchange: "domain_events", RoutingKey: "CardAddedToLibraryEvent", Body: []byte(`{"a":1}`)}
	with := func(f func(*amqp091.Delivery)) amqp091.Delivery {
		d := base
		f(&d)
		return d
	}
	tests := []struct {
		name    string
		d       amqp091.Delivery
		wantErr string
	}{
		{"foreign, key and body only", base, ""},
		{"json content type with charset", with(func(d *amqp091.Delivery) { d.ContentType = "application/json; charset=utf-8" }), ""},
		{"vendor json", with(func(d *amqp091.Delivery) { d.ContentType = "application/vnd.card+json" }), ""},
		{"not json", with(func(d *amqp091.Delivery) { d.Body = []byte("<xml/>") }), "not valid JSON"},
		{"text/plain", with(func(d *amqp091.Delivery) { d.ContentType = "text/plain" }), "not JSON"},
		{"gzip", with(func(d *amqp091.Delivery) { d.ContentEncoding = "gzip" }), "encoding"},
		{"too big", with(func(d *amqp091.Delivery) { d.Body = []byte(`"` + strings.Repeat("x", 100) + `"`) }), "limit is 64"},
		{"no type at all", with(func(d *amqp091.Delivery) { d.RoutingKey = "" }), "missing"},
	}
	for _, tt := range tests {
		ev, err := decode(&tt.d, 64)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if ev.Type != "CardAddedToLibraryEvent" || ev.Attempt != 1 || ev.ID == "" {
				t.Errorf("%s: decoded %+v", tt.name, ev)
			}
			continue
		}
		if !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want ErrUndecodable with %q", tt.name, err, tt.wantErr)
		}
		if ev.ID == "" {
			t.Errorf("%s: undecodable event has no id for tracing", tt.name)
		}
	}
}

func TestDerivedIDIsStableAcrossHops(t *testing.T) {
	t.Parallel()
	d := amqp091.Delivery{Exchange: "domain_events", RoutingKey: "X", Body: []byte(`{}`), Timestamp: time.Unix(100, 0)}
	id1 := deliveryID(&d)
	if id1 != deliveryID(&d) {
		t.Fatal("derived id not deterministic")
	}
	// The same message after a retry hop: delivered from the delay queue via
	// the default exchange, its origin in our headers.
	msg := republishing(&d, id1, func(amqp091.Table) {})
	hopped := amqp091.Delivery{Exchange: "", RoutingKey: "events_a", Headers: msg.Headers, Body: msg.Body,
		MessageId: msg.MessageId, Timestamp: msg.Timestamp}
	if got := deliveryID(&hopped); got != id1 {
		t.Fatalf("id changed across a hop: %s → %s", id1, got)
	}
	hopped.MessageId = ""
	if got := deliveryID(&hopped); got != id1 {
		t.Fatalf("derived id changed across a hop even without message_id: %s → %s", id1, got)
	}
	other := d
	other.Body = []byte(`{"b":2}`)
	if deliveryID(&other) == id1 {
		t.Fatal("different bodies got the same id")
	}
}

func TestRepublishingStripsBrokerState(t *testing.T) {
	t.Parallel()
	d := amqp091.Delivery{
		Exchange: "domain_events", RoutingKey: "X", UserId: "someone-else", Expiration: "60000",
		Headers: amqp091.Table{"x-delivery-count": int64(3), "aggregate_id": "a1", "x-death": []any{}},
	}
	msg := republishing(&d, "id", func(h amqp091.Table) { h[HeaderAttempt] = int32(2) })
	if _, ok := msg.Headers["x-delivery-count"]; ok {
		t.Error("x-delivery-count copied")
	}
	if msg.UserId != "" || msg.Expiration != "" {
		t.Errorf("user_id %q / expiration %q copied: the broker would reject or expire the hop", msg.UserId, msg.Expiration)
	}
	if msg.Headers["aggregate_id"] != "a1" || msg.Headers[HeaderRoutingKey] != "X" ||
		msg.Headers[HeaderExchange] != "domain_events" || msg.DeliveryMode != amqp091.Persistent {
		t.Errorf("hop lost its origin: %+v", msg)
	}
	if err := msg.Headers.Validate(); err != nil {
		t.Errorf("hop headers invalid: %v", err)
	}
}

func TestDeclareErrorNamesQueueArgumentAndFix(t *testing.T) {
	t.Parallel()
	raw := &amqp091.Error{Code: 406, Reason: "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'events_a' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"}
	err := declareError("queue", "events_a", raw)
	if !errors.Is(err, ErrTopologyMismatch) {
		t.Fatalf("not ErrTopologyMismatch: %v", err)
	}
	for _, want := range []string{`"events_a"`, `"x-queue-type"`, "QUEUE_TYPE", "delete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
	other := declareError("queue", "q", &amqp091.Error{Code: 403, Reason: "ACCESS_REFUSED"})
	if errors.Is(other, ErrTopologyMismatch) || !strings.Contains(other.Error(), "ACCESS_REFUSED") {
		t.Fatalf("a 403 is not a mismatch: %v", other)
	}
}

func TestValidateBindingKey(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"CardAddedToLibraryEvent", "#", "Billing.*", "*.Created", "a.#.b"} {
		if err := ValidateBindingKey(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*Event", "Card#", "Billing.In*"} {
		if err := ValidateBindingKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	got := RedactURL("amqps://user:s3cret@broker:5671/vhost")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "broker:5671") {
		t.Fatalf("RedactURL = %q", got)
	}
	if strings.Contains(RedactURL("amqp://u:p@h:bad port/"), "p@") {
		t.Fatal("unparsable URL echoed")
	}
}

func TestHugeForeignHeadersAreDroppedOnHops(t *testing.T) {
	t.Parallel()
	d := amqp091.Delivery{RoutingKey: "X", Headers: amqp091.Table{
		"big":          strings.Repeat("x", 130_838),
		"small":        "kept",
		"aggregate_id": "a1",
	}}
	msg := republishing(&d, "id", func(h amqp091.Table) {
		MarkDead(h, ReasonUndecodable, "app", strings.Repeat("e", 5000), time.Now())
	})
	if tableSize(msg.Headers) > MaxHeaderBytes {
		t.Fatalf("hop headers %d bytes, over %d", tableSize(msg.Headers), MaxHeaderBytes)
	}
	if _, ok := msg.Headers["big"]; ok || msg.Headers[HeaderDropped] != "big" {
		t.Fatalf("big header not dropped and named: %v", msg.Headers[HeaderDropped])
	}
	if msg.Headers["small"] != "kept" || msg.Headers["aggregate_id"] != "a1" || msg.Headers[HeaderReason] != "undecodable" {
		t.Fatal("headers that fit were dropped")
	}
}

// TestHopsFitWhateverTheHeadersHold: headers named like ours, forged values
// of our own headers and an oversized aggregate id still leave a hop that
// fits (before, only headers without the "eventfleet-" prefix were dropped,
// and a 123 KB "eventfleet-pad" made every hop fail).
func TestHopsFitWhateverTheHeadersHold(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 123_000)
	for _, tc := range []struct {
		name    string
		headers amqp091.Table
		dropped string
	}{
		{"an eventfleet- header that is not ours", amqp091.Table{"eventfleet-pad": big, "aggregate_id": "a1"}, "eventfleet-pad"},
		{"an oversized aggregate id", amqp091.Table{"aggregate_id": big, "other": "o"}, "aggregate_id"},
		{"oversized trace context", amqp091.Table{"traceparent": big[:60_000], "tracestate": big[:60_000]}, ""},
		{"a forged routing key header", amqp091.Table{HeaderRoutingKey: big}, ""},
		{"a forged dropped list", amqp091.Table{HeaderDropped: big, "x": big[:10]}, ""},
		{"a forged binary header of ours", amqp091.Table{HeaderReplays: []byte(big)}, HeaderReplays},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := amqp091.Delivery{RoutingKey: "X", Headers: tc.headers}
			msg := republishing(&d, "id", func(h amqp091.Table) {
				MarkDead(h, ReasonPermanent, "app", "boom", time.Now())
			})
			if n := tableSize(msg.Headers); n > MaxHeaderBytes {
				t.Fatalf("hop headers are %d bytes, over %d", n, MaxHeaderBytes)
			}
			if msg.Headers[HeaderReason] != "permanent" || msg.Headers[HeaderLastError] != "boom" {
				t.Errorf("our own headers were lost: %v", msg.Headers)
			}
			if got, _ := msg.Headers[HeaderDropped].(string); tc.dropped != "" && !strings.Contains(got, tc.dropped) {
				t.Errorf("%s = %q, want it to name %s", HeaderDropped, got, tc.dropped)
			}
		})
	}
}

// TestFitHeaders_ManySmallHeadersAreCheap: thousands of small headers made
// each drop walk the whole table again (1.25 s of CPU per hop for 8,191
// headers of three voids each, and 5,092 dropped where ~350 would do).
func TestFitHeaders_ManySmallHeadersAreCheap(t *testing.T) {
	t.Parallel()
	h := amqp091.Table{}
	for i := range 8191 {
		h[fmt.Sprintf("k%05d", i)] = []any{nil, nil, nil}
	}
	h["pad"] = strings.Repeat("p", 100_000)
	start := time.Now()
	fitHeaders(h)
	if tableSize(h) > MaxHeaderBytes {
		t.Fatalf("%d bytes, over %d", tableSize(h), MaxHeaderBytes)
	}
	if len(h) < 8000 {
		t.Errorf("%d headers left: only the large one had to go", len(h))
	}
	t.Logf("fitHeaders took %v", time.Since(start))
}
