package amqp

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/event"
)

// ErrUndecodable wraps every reason a delivery is not a readable event.
var ErrUndecodable = errors.New("undecodable message")

// errOversized is the ErrUndecodable of a delivery whose body the connection
// withheld: there is no body to move, so the broker must move the message.
// Its text is ErrUndecodable's.
var errOversized = fmt.Errorf("%w", ErrUndecodable)

// withheldBody is the size of the body the connection left out of d (see
// inboundConn), 0 when d has its body.
func withheldBody(d *amqp091.Delivery) int64 {
	n, _ := d.Headers[HeaderWithheldBody].(int64)
	return n
}

// publishing maps an event to the AMQP message our publishers send.
func publishing(ev *event.Event, appID string, now time.Time) amqp091.Publishing {
	headers := amqp091.Table{}
	for k, v := range ev.Headers {
		headers[k] = v
	}
	if ev.AggregateID != "" {
		headers[HeaderAggregateID] = ev.AggregateID
	}
	ts := ev.Time
	if ts.IsZero() {
		ts = now
	}
	body := []byte(ev.Data)
	if len(body) == 0 {
		body = []byte("{}")
	}
	return amqp091.Publishing{
		Headers:      headers,
		ContentType:  "application/json",
		DeliveryMode: amqp091.Persistent,
		MessageId:    ev.ID,
		Timestamp:    ts,
		Type:         ev.Type,
		AppId:        appID,
		Body:         body,
	}
}

// isJSONContentType accepts what JSON publishers send: nothing (amqplib by
// default), application/json, text/json, and any +json type.
func isJSONContentType(ct string) bool {
	if ct == "" || ct == "application/json" {
		// The common case, without mime.ParseMediaType's allocations
		// (docs/design.md, "Client costs measured").
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// decode turns a delivery into an event. It fails, wrapping ErrUndecodable,
// for what no handler could use: a body over maxBody bytes, a compressed or
// non-JSON body, or no usable event type. The event's ID and Attempt are set
// even on failure so the dead letter can be traced.
func decode(d *amqp091.Delivery, maxBody int) (event.Event, error) {
	ev := event.Event{
		ID:      deliveryID(d),
		Type:    d.Type,
		Source:  d.AppId,
		Time:    EventTime(d.Timestamp),
		Attempt: attemptOf(d.Headers),
		Headers: d.Headers,
	}
	if ev.Type == "" {
		ev.Type = originalKey(d)
	}
	ev.AggregateID, _ = d.Headers[HeaderAggregateID].(string)
	switch {
	case withheldBody(d) > 0:
		return ev, fmt.Errorf("%w: body is %d bytes, the limit is %d (not read)", errOversized, withheldBody(d), maxBody)
	case maxBody > 0 && len(d.Body) > maxBody:
		return ev, fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrUndecodable, len(d.Body), maxBody)
	case d.ContentEncoding != "" && d.ContentEncoding != "identity":
		return ev, fmt.Errorf("%w: content encoding %q is not supported", ErrUndecodable, d.ContentEncoding)
	case !isJSONContentType(d.ContentType):
		return ev, fmt.Errorf("%w: content type %q is not JSON", ErrUndecodable, d.ContentType)
	case !event.ValidJSON(d.Body):
		return ev, fmt.Errorf("%w: body is not valid JSON", ErrUndecodable)
	}
	if err := event.ValidateType(ev.Type); err != nil {
		return ev, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	ev.Data = json.RawMessage(d.Body)
	return ev, nil
}

// MaxHeaderBytes bounds the encoded header table of a message we publish. The
// content header frame (headers plus the other properties) must fit the
// negotiated frame_max, 128 KiB on RabbitMQ by default; a larger one makes the
// broker close the whole connection with FRAME_ERROR.
const MaxHeaderBytes = 120 << 10

// tableSize is an upper bound of t's AMQP field-table encoding in bytes.
func tableSize(t amqp091.Table) int {
	n := 4
	for k, v := range t {
		n += 1 + len(k) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return 5 + len(v)
	case []byte:
		return 5 + len(v)
	case amqp091.Table:
		return 1 + tableSize(v)
	case []any:
		n := 5
		for _, e := range v {
			n += valueSize(e)
		}
		return n
	case nil:
		return 1 // void
	default:
		return 9 // numbers, bools, timestamps, decimals
	}
}

// essentialHeaders say what happened to an event; a hop always keeps them.
// Each is bounded (an error or a list of names is truncated to
// MaxErrorLen, a routing key is at most 255 bytes), so together
// they always fit.
var essentialHeaders = map[string]bool{
	HeaderAttempt: true, HeaderRoutingKey: true, HeaderExchange: true,
	HeaderFirstFailure: true, HeaderLastError: true, HeaderReason: true,
	HeaderDeadAt: true, HeaderApp: true, HeaderReplays: true,
	HeaderDropped: true,
}

// knownHeaders are the other headers of the wire contract: kept while
// foreign ones can make room, dropped when only they can.
var knownHeaders = map[string]bool{
	HeaderAggregateID: true, HeaderUnreadable: true, "traceparent": true, "tracestate": true,
}

// fitHeaders makes h fit MaxHeaderBytes: it drops the largest foreign headers
// first (anyone's, "eventfleet-" names that are not ours included), then, if
// that is not enough, the largest of the wire contract's optional ones
// (aggregate id, trace context), and names what it dropped in HeaderDropped.
// The essential headers stay, cut to MaxErrorLen if a foreign
// publisher made them larger, so a hop always fits.
func fitHeaders(h amqp091.Table) {
	if tableSize(h) <= MaxHeaderBytes {
		return
	}
	type entry struct {
		k    string
		size int
	}
	var dropped []string
	// Sized once, then less each entry dropped: a table of thousands of
	// small headers must not cost a full walk per drop.
	size := tableSize(h)
	for _, optional := range []bool{false, true} {
		var candidates []entry
		for k, v := range h {
			if !essentialHeaders[k] && knownHeaders[k] == optional {
				candidates = append(candidates, entry{k, 1 + len(k) + valueSize(v)})
			}
		}
		slices.SortFunc(candidates, func(a, b entry) int { return b.size - a.size })
		for _, e := range candidates {
			if size <= MaxHeaderBytes-2048 {
				break
			}
			delete(h, e.k)
			size -= e.size
			dropped = append(dropped, e.k)
		}
	}
	if size > MaxHeaderBytes-2048 {
		// Only a foreign publisher's forged values of our own headers can
		// be this large: bound them as our own are bounded.
		for k, v := range h {
			if s, ok := v.(string); ok && essentialHeaders[k] {
				h[k] = TruncateError(s)
			} else if essentialHeaders[k] && valueSize(v) > MaxErrorLen {
				delete(h, k)
				dropped = append(dropped, k)
			}
		}
	}
	if prior, ok := h[HeaderDropped].(string); ok && prior != "" {
		dropped = append([]string{prior}, dropped...)
	}
	h[HeaderDropped] = TruncateError(strings.Join(dropped, ","))
}
