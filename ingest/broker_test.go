package ingest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestHandler_RealBroker runs the Handler on a real Publisher: a 202 means
// the events are on the broker.
func TestHandler_RealBroker(t *testing.T) {
	t.Parallel()
	p, queue := startPublisher(t, brokertest.URL(t))
	h, err := ingest.New(ingest.Config{Auth: ingest.AuthNone, Publisher: p, Timeout: 30 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	resp, got := post(t, srv.URL+"/events", `[{"type":"X","id":"h-1","aggregate_id":"g"},{"type":"Y","data":{"k":"v"}}]`)
	ids := strs(got["ids"])
	if resp.StatusCode != http.StatusAccepted || len(ids) != 2 || ids[0] != "h-1" {
		t.Fatalf("POST: %d %v, want 202 with ids [h-1 <generated>]", resp.StatusCode, got)
	}
	arrived := brokertest.Drain(t, queue, 2, 300*time.Millisecond)
	var seen []string
	for _, d := range arrived {
		seen = append(seen, d.MessageId+" "+d.RoutingKey+" "+string(d.Body))
	}
	want := []string{"h-1 X {}", ids[1] + ` Y {"k":"v"}`}
	if !slices.Equal(seen, want) {
		t.Errorf("arrived %q, want %q", seen, want)
	}
}

// startPublisher starts a Publisher on url, on a fresh exchange with a
// catch-all queue (both deleted at cleanup), and returns it with the queue.
func startPublisher(t *testing.T, url string) (*amqp.Publisher, string) {
	t.Helper()
	exchange, queue := brokertest.TopicExchange(t, func(x string) []string { return []string{amqp.UnroutedQueue(x)} })
	return startPublisherOn(t, url, exchange), queue
}

// startPublisherOn starts a Publisher of exchange on url, stopped at cleanup.
func startPublisherOn(t *testing.T, url, exchange string) *amqp.Publisher {
	t.Helper()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: url, Exchange: exchange, AppID: "ingest-test", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(t.Context()) })
	return p
}

// post sends body to url as JSON and decodes the JSON answer.
func post(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %v", url, err)
	}
	return resp, got
}

// client keeps no idle connection whose goroutines would outlive the tests
// (goleak).
var client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
