package amqp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/eventlog"
	"github.com/eventfleet/eventfleet/internal/fuzzmsg"
	"github.com/eventfleet/eventfleet/webhook"
)

// checkHopFits asserts that every hop's headers fit MaxHeaderBytes. It needs
// fitHeaders to keep only the wire contract's headers when tight (issue #12,
// finding 3); turn it off only to fuzz a branch without that fix.
const checkHopFits = true

// FuzzDeliveryPath follows an arbitrary delivery (every property, headers of
// every type amqp091 decodes, nested deep, huge, with control characters,
// invalid UTF-8, NaN) the whole way a worker takes it: decode, then the log
// handler's line and the webhook handler's request for a decoded event, the
// retry and dead-letter hops, and the dead letter as "worker dlq" reads it.
// Nothing may panic; decode fails only with ErrUndecodable (the event is then
// dead-lettered); no handler fails for what the message carries; every hop is
// publishable and fits; the dead letter keeps the id and can be shown.
// (cmd/worker's FuzzDLQRender fuzzes the dlq text and JSON output.)
func FuzzDeliveryPath(f *testing.F) {
	ms := uint64(time.Date(2026, 12, 1, 20, 30, 15, 123e6, time.UTC).UnixMilli())
	// body, content type, content encoding, type, message id, app id,
	// exchange, routing key, timestamp (raw 64 bits), header seed.
	f.Add([]byte(`{"card":1}`), "", "", "", "", "amqplib", "domain_events", "CardAdded", ms, []byte{12, 0, 3, 'l', 'i', 'b'})
	f.Add([]byte(`{"card":1}`), "application/json", "", "CardAdded", "id-1", "catalog", "domain_events", "CardAdded",
		uint64(1764620000), []byte{})
	f.Add([]byte(`{}`), "application/json", "", "T", "x\x1b[2J\n  reason: FAKE\n", "app\x00", "", "events_a",
		^uint64(0), []byte{12, 0, 3, 'a', '\r', '\n', 30, 10, 0xff, 0xf8, 0, 0, 0, 0, 0, 0, 31, 17, 2, 'x', 39})
	f.Add([]byte("<xml/>"), "text/xml", "gzip", "\xff\xfe", "", "", "x", "k", uint64(1)<<62,
		[]byte{4, 0, 0xf9, 'p', 17, 0xf5, 'e', 0, 15, 3, 40, 1, 1, 'q', 16, 3, 2, 9, 13, 4, 0, 0, 0, 7})
	f.Add([]byte(`{"a":[1,2,3]}`), "application/vnd.x+json; charset=utf-8", "identity", "Order.Placed", "", "", "", "Order.Placed",
		uint64(253402300800000), []byte{13, 18, 0, 0xfe, 'z', 5, 0, 0xf1, 'y', 2, 2, 9, 50, 9})
	// finding 3 of issue #12: a 192 KiB eventfleet-pad header on a non-JSON body.
	f.Add([]byte("not json"), "text/plain", "", "Pad", "pad-1", "", "domain_events", "Pad", uint64(1764620000),
		[]byte{17, 0, 0xff, 'p'})

	f.Fuzz(func(t *testing.T, body []byte, contentType, contentEncoding, typ, messageID, appID, exchange, routingKey string,
		ts uint64, headers []byte,
	) {
		d := fuzzmsg.Delivery(fuzzmsg.Props{ContentType: contentType, ContentEncoding: contentEncoding, Type: typ,
			MessageID: messageID, AppID: appID, Exchange: exchange, RoutingKey: routingKey, Timestamp: ts,
			Headers: headers, Body: body})
		ctx := context.Background()

		ev, err := amqp.Decode(d, 0)
		if err != nil && !errors.Is(err, amqp.ErrUndecodable) {
			t.Fatalf("decode: %v does not wrap ErrUndecodable", err)
		}
		if y := ev.Time.Year(); !ev.Time.IsZero() && (y < 1970 || y > 9999) {
			t.Fatalf("event time %v (raw %d) cannot be shown", ev.Time, ts)
		}
		if err == nil {
			var line bytes.Buffer
			if herr := eventlog.New(&line).Handle(ctx, ev); herr != nil {
				t.Fatalf("log handler failed a decoded event: %v", herr)
			}
			if s := line.String(); strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !json.Valid(line.Bytes()) {
				t.Fatalf("log line is not one JSON line: %q", s)
			}
			req, rerr := webhook.NewRequest(ctx, "http://hook.example/events", ev)
			if rerr != nil {
				t.Fatalf("webhook request for a decoded event: %v", rerr)
			}
			for k, vs := range req.Header {
				for _, v := range vs {
					if strings.ContainsFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) {
						t.Fatalf("webhook header %s = %q: net/http would refuse the request", k, v)
					}
				}
			}
			if sent, _ := io.ReadAll(req.Body); !bytes.Equal(sent, ev.Data) {
				t.Fatalf("webhook body %q, want the event data %q", sent, ev.Data)
			}
		}

		now := time.Unix(1764620000, 0)
		cause := "handler failed"
		if err != nil {
			cause = err.Error()
		}
		hops := map[string]amqp091.Publishing{
			"retry": amqp.Republishing(d, ev.ID, func(h amqp091.Table) {
				amqp.MarkFailed(h, cause, now)
				h[amqp.HeaderAttempt] = int32(ev.Attempt + 1)
			}),
			"dead": amqp.Republishing(d, ev.ID, func(h amqp091.Table) {
				amqp.MarkDead(h, amqp.ReasonUndecodable, "fuzz", cause, now)
				h[amqp.HeaderAttempt] = int32(ev.Attempt)
			}),
		}
		for name, hop := range hops {
			if verr := hop.Headers.Validate(); verr != nil {
				t.Fatalf("%s hop headers cannot be published: %v", name, verr)
			}
			if n := amqp.TableSize(hop.Headers); checkHopFits && n > amqp.MaxHeaderBytes {
				t.Fatalf("%s hop headers are %d bytes, over MaxHeaderBytes %d", name, n, amqp.MaxHeaderBytes)
			}
			if hop.MessageId != ev.ID || !hop.Timestamp.Equal(d.Timestamp) {
				t.Fatalf("%s hop changed id %q → %q or timestamp %v → %v", name, ev.ID, hop.MessageId, d.Timestamp, hop.Timestamp)
			}
		}

		// The dead letter as "worker dlq" reads it from events_fuzz.dead.
		dead := hops["dead"]
		back := &amqp091.Delivery{Headers: dead.Headers, ContentType: dead.ContentType, ContentEncoding: dead.ContentEncoding,
			MessageId: dead.MessageId, Timestamp: dead.Timestamp, Type: dead.Type, AppId: dead.AppId,
			RoutingKey: "events_fuzz.dead", Body: dead.Body}
		m := deadletter.ReadMessage(back, false)
		if m.ID != ev.ID {
			t.Fatalf("dead letter id %q, the worker's %q", m.ID, ev.ID)
		}
		if m.Reason != amqp.ReasonUndecodable {
			t.Fatalf("dead letter reason %q, want %q", m.Reason, amqp.ReasonUndecodable)
		}
		checkShowable(t, m)
		// Any message may sit in a dead-letter or unrouted queue as it came.
		checkShowable(t, deadletter.ReadMessage(d, false))
		checkShowable(t, deadletter.ReadMessage(d, true))
	})
}

// checkShowable fails when m's fields (headers aside: dlq never shows them)
// cannot be written as JSON.
func checkShowable(t *testing.T, m deadletter.Message) {
	t.Helper()
	m.Headers = nil
	if _, err := json.Marshal(m); err != nil {
		t.Fatalf("dead letter %q cannot be shown: %v", m.ID, err)
	}
}
