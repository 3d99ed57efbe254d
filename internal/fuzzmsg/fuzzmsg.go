// Package fuzzmsg builds AMQP deliveries from fuzzer input, for the fuzz
// targets that follow a delivery through the worker (amqp) and the
// dead-letter tools (cmd/worker). Its header tables hold only the value types
// amqp091 decodes from the wire, so every delivery it builds is one a foreign
// publisher could have sent.
package fuzzmsg

import (
	"encoding/binary"
	"math"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Props are the fuzzed properties of a delivery.
type Props struct {
	ContentType, ContentEncoding, Type, MessageID, AppID string
	Exchange, RoutingKey                                 string
	// Timestamp is the property's 64 bits, as amqp091 reads them.
	Timestamp uint64
	// Headers seeds the header table (see Headers).
	Headers []byte
	Body    []byte
}

// Delivery is the delivery p describes, as amqp091 would hand it over.
func Delivery(p Props) *amqp091.Delivery {
	d := &amqp091.Delivery{
		Headers:         Headers(p.Headers),
		ContentType:     shortstr(p.ContentType),
		ContentEncoding: shortstr(p.ContentEncoding),
		DeliveryMode:    amqp091.Persistent,
		MessageId:       shortstr(p.MessageID),
		Type:            shortstr(p.Type),
		AppId:           shortstr(p.AppID),
		Exchange:        shortstr(p.Exchange),
		RoutingKey:      shortstr(p.RoutingKey),
		Body:            p.Body,
	}
	if p.Timestamp != 0 {
		d.Timestamp = time.Unix(int64(p.Timestamp), 0) // amqp091's readTimestamp
	}
	return d
}

// shortstr cuts s to what an AMQP shortstr can carry (255 bytes).
func shortstr(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

// Keys the header seed picks from, so the fuzzer reaches the wire contract's
// headers without guessing their names.
var Keys = []string{
	"eventfleet-attempt", "eventfleet-routing-key", "eventfleet-exchange", "eventfleet-first-failure",
	"eventfleet-last-error", "eventfleet-dead-reason", "eventfleet-dead-at", "eventfleet-app", "eventfleet-replays",
	"eventfleet-dropped-headers", "eventfleet-unreadable-headers", "eventfleet-withheld-body", "aggregate_id",
	"x-death", "x-delivery-count", "x-first-death-reason", "traceparent", "eventfleet-pad",
}

// maxDepth bounds the nesting the seed can build; amqp091 reads 32 levels.
const maxDepth = 40

// Headers decodes seed into a header table: a little program whose bytes
// pick keys, value types, lengths and contents. Any seed gives a table.
func Headers(seed []byte) amqp091.Table {
	r := &reader{b: seed}
	return r.table(0)
}

type reader struct {
	b []byte
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint64() uint64 {
	var buf [8]byte
	n := copy(buf[:], r.b)
	r.b = r.b[n:]
	return binary.BigEndian.Uint64(buf[:])
}

// str is a string of the next byte's length from the seed, or a huge one
// (up to 192 KiB, over MaxHeaderBytes) repeating a seed byte.
func (r *reader) str() string {
	n := int(r.byte())
	if n >= 0xf0 {
		return strings.Repeat(string(rune(r.byte())), (n-0xef)*12<<10)
	}
	n = min(n, len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) key() string {
	c := r.byte()
	if int(c) < len(Keys) {
		return Keys[c]
	}
	return shortstr(r.str())
}

// table reads entries until the seed ends or an entry count runs out.
func (r *reader) table(depth int) amqp091.Table {
	t := amqp091.Table{}
	n := 64 // the top level reads the whole seed
	if depth > 0 {
		n = int(r.byte() % 16)
	}
	for i := 0; i < n && len(r.b) > 0; i++ {
		k := r.key()
		t[k] = r.value(depth)
	}
	return t
}

func (r *reader) value(depth int) any {
	switch r.byte() % 18 {
	case 0:
		return r.str()
	case 1:
		return []byte(r.str())
	case 2:
		return int8(r.byte())
	case 3:
		return uint8(r.byte())
	case 4:
		return int16(r.uint64())
	case 5:
		return uint16(r.uint64())
	case 6:
		return int32(r.uint64())
	case 7:
		return uint32(r.uint64())
	case 8:
		return int64(r.uint64())
	case 9:
		return math.Float32frombits(uint32(r.uint64()))
	case 10:
		return math.Float64frombits(r.uint64()) // NaN and infinities too
	case 11:
		return r.byte()%2 == 1
	case 12:
		return time.Unix(int64(r.uint64()), 0)
	case 13:
		return amqp091.Decimal{Scale: r.byte(), Value: int32(r.uint64())}
	case 14:
		return nil
	case 15:
		if depth >= maxDepth {
			return nil
		}
		return r.table(depth + 1)
	case 16:
		if depth >= maxDepth {
			return nil
		}
		n := int(r.byte() % 8)
		a := make([]any, 0, n)
		for i := 0; i < n; i++ {
			a = append(a, r.value(depth+1))
		}
		return a
	default:
		// Deep nesting at once: a chain of tables.
		t := amqp091.Table{"leaf": r.str()}
		for range int(r.byte()) % maxDepth {
			t = amqp091.Table{"n": t}
		}
		return t
	}
}
