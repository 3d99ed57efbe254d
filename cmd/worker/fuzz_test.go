package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/internal/fuzzmsg"
)

// peekFields are the field names "peek" writes, each at a line's start.
var peekFields = []string{"id", "type", "routing key", "aggregate", "source", "reason", "attempts", "replays",
	"time", "last error", "unreadable", "body"}

// FuzzDLQRender reads arbitrary messages as "worker dlq" finds them in a
// dead-letter or unrouted queue and renders them as peek, replay --dry-run,
// purge and list do, in text and JSON. Nothing may panic or fail; text output
// holds no control character but its line ends, every line is a field of
// ours (no value can forge one); JSON output is valid, without raw DEL or C1
// controls, and gives back the id.
func FuzzDLQRender(f *testing.F) {
	f.Add([]byte(`{"card":1}`), "", "", "", "", "amqplib", "domain_events", "CardAdded",
		uint64(time.Date(2026, 12, 1, 20, 30, 15, 0, time.UTC).UnixMilli()), []byte{5, 0, 6, 'b', 'o', 'o', 'm'})
	f.Add([]byte("{\"s\":\"\x1b[2J\"}"), "application/json", "", "T\x1b[8m", forgedID, "app\x00", "", "events_a.dead",
		^uint64(0), []byte{4, 0, 12, 'o', 'o', 'p', 's', '\n', ' ', ' ', 'r', 'e', 'a', 's', 'o', 'n', 5, 0, 3, 0xc2, 0x9b, 'x'})
	f.Add([]byte{0xff, 0xfe, '\n'}, "text/plain", "gzip", "", "", "", "", "k", uint64(0), []byte{13, 17, 1, 'x', 39, 0, 0xf3, '\x07'})

	f.Fuzz(func(t *testing.T, body []byte, contentType, contentEncoding, typ, messageID, appID, exchange, routingKey string,
		ts uint64, headers []byte,
	) {
		d := fuzzmsg.Delivery(fuzzmsg.Props{ContentType: contentType, ContentEncoding: contentEncoding, Type: typ,
			MessageID: messageID, AppID: appID, Exchange: exchange, RoutingKey: routingKey, Timestamp: ts,
			Headers: headers, Body: body})
		for _, unrouted := range []bool{false, true} {
			m := deadletter.ReadMessage(d, unrouted)

			var b strings.Builder
			writeMessageText(&b, m)
			checkTerminal(t, "peek", b.String())
			for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				name, _, ok := strings.Cut(strings.TrimPrefix(l, "  "), ":")
				if !ok || !strings.HasPrefix(l, "  ") || !slices.Contains(peekFields, name) {
					t.Fatalf("peek line %q is not one of our fields:\n%s", l, b.String())
				}
			}
			line := termSafe(fmt.Sprintf("%s  %s  %s: %s", "would replay", m.ID, m.Type, m.LastError))
			checkTerminal(t, "replay", line+"\n")
			var counts strings.Builder
			writeCounts(&counts, map[string]int{m.Type: 1, string(m.Reason): 2})
			checkTerminal(t, "list", counts.String())

			var out bytes.Buffer
			if err := writeJSON(&out, []messageJSON{toJSON(m)}); err != nil {
				t.Fatalf("peek -o json: %v", err)
			}
			if bytes.ContainsFunc(out.Bytes(), func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
				t.Fatalf("peek -o json carries a raw DEL or C1 control: %q", out.String())
			}
			var back []messageJSON
			if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back) != 1 {
				t.Fatalf("peek -o json is not a JSON array of one message: %v\n%s", err, out.String())
			}
			if want := jsonString(m.ID); back[0].ID != want {
				t.Fatalf("peek -o json id %q, want %q", back[0].ID, want)
			}
		}
	})
}

// checkTerminal fails when out holds invalid UTF-8 or a control character
// other than the line ends.
func checkTerminal(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s output is not valid UTF-8: %q", what, out)
	}
	if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && isControl(r) }); i >= 0 {
		t.Fatalf("%s output carries control character %q: %q", what, out[i], out)
	}
}

// jsonString is s as encoding/json gives it back: each invalid byte U+FFFD.
func jsonString(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // an invalid byte ranges as utf8.RuneError, one each
	}
	return b.String()
}
