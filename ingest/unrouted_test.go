package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestHandler_UnroutedQueueFull: with the unrouted queue at its bound (a
// policy, on a private node), an event nobody is bound for is answered 503
// whose error names the full queue; never a 202 for an event the broker did
// not keep.
func TestHandler_UnroutedQueueFull(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	pol := amqp.NewUnroutedPolicy(amqp.DefaultExchange)
	pol.MaxLen = 1
	node.Ctl(t, pol.CtlArgs()...)
	p := startPublisherOn(t, node.URL(), amqp.DefaultExchange)
	h, err := ingest.New(ingest.Config{Auth: ingest.AuthNone, Publisher: p, Timeout: 10 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// A quorum queue takes the one message that brings it past max-length
	// (RabbitMQ 3.10.8), so the refusal comes at the second or third event.
	for i := range 3 {
		start := time.Now()
		resp, got := post(t, srv.URL+"/events", fmt.Sprintf(`{"type":"NobodyListens","id":"u-%d"}`, i))
		took := time.Since(start)
		if resp.StatusCode == http.StatusAccepted {
			continue
		}
		t.Logf("event %d answered %d after %v: %v", i+1, resp.StatusCode, took, got)
		if i == 0 || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("event %d: %d %v, want 202 within the bound, then 503", i+1, resp.StatusCode, got)
		}
		msg, _ := got["error"].(string)
		if !strings.Contains(msg, "the unrouted queue that keeps such events is full") {
			t.Errorf("503 error %q does not say why", msg)
		}
		for _, s := range []string{"domain_events.unrouted", "worker dlq"} {
			if strings.Contains(msg, s) {
				t.Errorf("503 error %q shows a caller the broker's internals (%s)", msg, s)
			}
		}
		if un := strs(got["unconfirmed"]); len(un) != 1 || un[0] != fmt.Sprintf("u-%d", i) {
			t.Errorf("unconfirmed = %v, want [u-%d]", un, i)
		}
		return
	}
	t.Fatal("3 unroutable events accepted with max-length 1: the bound did not hold")
}
