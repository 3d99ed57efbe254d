package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Control characters in an id or aggregate id would reach logs, HTTP
// headers and terminals: both ingest paths refuse them, naming the field
// (POST /events: ingest's TestHandler_Events_RejectsControlCharacters).

func TestPublish_RejectsControlCharacters(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	input := strings.Join([]string{
		`{"type":"A","id":"ok-1"}`,
		`{"type":"A","id":"x\u001b[2J\n  reason:      FAKE-REASON\n"}`,
		`{"type":"A","id":"ok-2","aggregate_id":"lib\r\n1"}`,
		`{"type":"A","id":"ok-3","aggregate_id":"lib-1"}`,
	}, "\n") + "\n"
	stdout, stderr, code := runBin(t, brokerEnv(t, exchange), strings.NewReader(input), "publish")
	if stdout != "published=2 failed=2\n" || code != 1 {
		t.Fatalf("stdout %q exit %d, want published=2 failed=2 and exit 1; stderr:\n%s", stdout, code, stderr)
	}
	for _, want := range []string{
		`line 2: invalid event id: "x\x1b[2J\n  reason:      FAKE-REASON\n" contains control character U+001B`,
		`line 3: invalid aggregate_id: "lib\r\n1" contains control character U+000D`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.ContainsAny(stderr, "\x1b\r") {
		t.Errorf("stderr carries a raw control character:\n%q", stderr)
	}
	got := brokertest.Drain(t, queue, 2, 300*time.Millisecond)
	var ids []string
	for _, d := range got {
		ids = append(ids, d.MessageId)
	}
	slices.Sort(ids) // publish pipelines events: confirm order is not line order
	if strings.Join(ids, ",") != "ok-1,ok-3" {
		t.Errorf("published ids %v, want [ok-1 ok-3]", ids)
	}
}
