package amqp

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/event"
)

// fuzzShortstr cuts s to what an AMQP shortstr property can carry on the
// wire (255 bytes): the broker never delivers longer ones.
func fuzzShortstr(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

// fuzzAttempt turns the fuzzer's number into the attempt header in one of the
// integer types a foreign client may use, or something that is not a number.
func fuzzAttempt(kind uint8, n int64) any {
	switch kind % 10 {
	case 0:
		return nil // header absent
	case 1:
		return int8(n)
	case 2:
		return int16(n)
	case 3:
		return int32(n)
	case 4:
		return n
	case 5:
		return uint8(n)
	case 6:
		return uint16(n)
	case 7:
		return uint32(n)
	case 8:
		return float64(n)
	default:
		return "3"
	}
}

// FuzzDecode feeds arbitrary deliveries, as a foreign publisher or an earlier
// hop could shape them, through decode and both kinds of hop (retry and dead
// letter). Neither may panic; a decoded event is usable; an undecodable one
// still has an id; a hop is publishable and carries no broker state.
func FuzzDecode(f *testing.F) {
	// body, content type, content encoding, type, routing key, message id,
	// exchange, origin-key header, origin-exchange header, aggregate id,
	// extra header key, extra header value, attempt kind, attempt, x-delivery-count, max body.
	f.Add([]byte(`{"cardId":"c1"}`), "application/json", "", "CardAddedToLibraryEvent", "CardAddedToLibraryEvent",
		"0193b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "domain_events", "", "", "lib-1", "", "", uint8(0), int64(0), int64(0), uint32(0))
	f.Add([]byte(`{"a":1}`), "", "", "", "OrderPlacedEvent", "", "domain_events", "", "", "", "", "", uint8(0), int64(0), int64(0), uint32(64))
	f.Add([]byte(`{"a":1}`), "application/json; charset=utf-8", "identity", "", "events_billing", "id-7", "",
		"OrderPlacedEvent", "domain_events", "order-1", "eventfleet-first-failure", "2026-11-28T10:00:00Z", uint8(3), int64(3), int64(2), uint32(0))
	f.Add([]byte("<xml/>"), "text/xml", "", "", "Permanent", "", "domain_events", "", "", "", "", "", uint8(4), int64(99), int64(0), uint32(0))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00}, "application/json", "gzip", "Zipped", "Zipped", "z", "x", "", "", "", "", "", uint8(9), int64(0), int64(1), uint32(0))
	f.Add([]byte(`"`+string(make([]byte, 80))+`"`), "application/vnd.card+json", "", "Card*", "Bad\x01Key", "", "", "", "", "", "x-death", "v", uint8(1), int64(-5), int64(0), uint32(16))
	f.Add([]byte(``), "", "", "", "", "", "", "", "", "", "", "", uint8(7), int64(1<<21), int64(0), uint32(0))
	f.Add([]byte(`null`), ";;;", "", "\xff", "k", "", "", "\xfe", "", "", "aggregate_id", "agg", uint8(2), int64(1<<20), int64(0), uint32(4))

	f.Fuzz(func(t *testing.T, body []byte, contentType, contentEncoding, typ, routingKey, messageID, exchange,
		origKey, origExchange, aggregateID, hdrKey, hdrVal string, attemptKind uint8, attempt, deliveryCount int64, maxBody uint32,
	) {
		h := amqp091.Table{}
		if origKey != "" {
			h[HeaderRoutingKey] = origKey
		}
		if origExchange != "" {
			h[HeaderExchange] = origExchange
		}
		if aggregateID != "" {
			h[HeaderAggregateID] = aggregateID
		}
		if a := fuzzAttempt(attemptKind, attempt); a != nil {
			h[HeaderAttempt] = a
		}
		if deliveryCount != 0 {
			h["x-delivery-count"] = deliveryCount
			h["x-death"] = []any{amqp091.Table{"reason": "expired", "count": deliveryCount, "queue": "events_a.retry.1s"}}
			h["x-first-death-reason"] = "expired"
		}
		if hdrKey != "" {
			h[hdrKey] = hdrVal // may overwrite any of the above, with a string
		}
		d := &amqp091.Delivery{
			Headers:         h,
			ContentType:     fuzzShortstr(contentType),
			ContentEncoding: fuzzShortstr(contentEncoding),
			DeliveryMode:    amqp091.Persistent,
			MessageId:       fuzzShortstr(messageID),
			Timestamp:       time.Unix(attempt, 0),
			Type:            fuzzShortstr(typ),
			AppId:           "fuzz",
			Exchange:        fuzzShortstr(exchange),
			RoutingKey:      fuzzShortstr(routingKey),
			Body:            body,
		}
		limit := int(maxBody % (1 << 16))

		ev, err := decode(d, limit)
		if ev.ID == "" {
			t.Fatalf("decode gave an empty id (err %v)", err)
		}
		if len(ev.ID) > 255 {
			t.Fatalf("id is %d bytes: it cannot be a message_id", len(ev.ID))
		}
		if ev.Attempt < 1 {
			t.Fatalf("attempt %d", ev.Attempt)
		}
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
		} else {
			if verr := event.ValidateType(ev.Type); verr != nil {
				t.Fatalf("decoded event has an invalid type %q: %v", ev.Type, verr)
			}
			if !json.Valid(ev.Data) {
				t.Fatalf("decoded event data is not JSON: %q", ev.Data)
			}
			if limit > 0 && len(ev.Data) > limit {
				t.Fatalf("decoded %d bytes with a limit of %d", len(ev.Data), limit)
			}
		}
		if again, err2 := decode(d, limit); again.ID != ev.ID || (err == nil) != (err2 == nil) {
			t.Fatalf("decode not deterministic: %q/%v then %q/%v", ev.ID, err, again.ID, err2)
		}

		// Both hops, edited as the worker does.
		now := time.Unix(1764000000, 0)
		cause := errors.New("handler failed")
		if err != nil {
			cause = err
		}
		retryHop := republishing(d, ev.ID, func(h amqp091.Table) {
			MarkFailed(h, cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt + 1)
		})
		deadHop := republishing(d, ev.ID, func(h amqp091.Table) {
			MarkDead(h, ReasonUndecodable, "fuzz", cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt)
		})
		for name, msg := range map[string]amqp091.Publishing{"retry": retryHop, "dead": deadHop} {
			if err := msg.Headers.Validate(); err != nil {
				t.Fatalf("%s hop headers invalid: %v", name, err)
			}
			for _, k := range DeliveryHeaders {
				if _, ok := msg.Headers[k]; ok {
					t.Fatalf("%s hop carries broker header %q", name, k)
				}
			}
			if msg.MessageId != ev.ID || !slices.Equal(msg.Body, d.Body) || msg.DeliveryMode != amqp091.Persistent {
				t.Fatalf("%s hop changed the message: id %q body %d bytes mode %d", name, msg.MessageId, len(msg.Body), msg.DeliveryMode)
			}
			if msg.Headers[HeaderRoutingKey] != originalKey(d) || msg.Headers[HeaderExchange] != originalExchange(d) {
				t.Fatalf("%s hop lost the origin", name)
			}
			if s, _ := msg.Headers[HeaderLastError].(string); len(s) > MaxErrorLen {
				t.Fatalf("%s hop last error is %d bytes", name, len(s))
			}
			// The hop as the app's queue delivers it again: same id, same
			// attempt as stamped, and for a retry the same decoded event.
			back := &amqp091.Delivery{Headers: msg.Headers, ContentType: msg.ContentType, ContentEncoding: msg.ContentEncoding,
				MessageId: msg.MessageId, Timestamp: msg.Timestamp, Type: msg.Type, AppId: msg.AppId,
				Exchange: "", RoutingKey: "events_fuzz", Body: msg.Body}
			ev2, err2 := decode(back, limit)
			if ev2.ID != ev.ID {
				t.Fatalf("%s hop changed the id: %q → %q", name, ev.ID, ev2.ID)
			}
			// Only a decoded event is ever retried: it must come back the same.
			if name == "retry" && err == nil {
				if err2 != nil {
					t.Fatalf("retry hop made the event undecodable: %v", err2)
				}
				if ev2.Attempt != ev.Attempt+1 && ev.Attempt+1 <= 1<<20 {
					t.Fatalf("retry hop attempt %d → %d", ev.Attempt, ev2.Attempt)
				}
				if ev2.Type != ev.Type || ev2.AggregateID != ev.AggregateID || string(ev2.Data) != string(ev.Data) {
					t.Fatalf("retry hop changed the event: %q/%q → %q/%q", ev.Type, ev.AggregateID, ev2.Type, ev2.AggregateID)
				}
			}
		}
	})
}
