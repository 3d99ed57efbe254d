package ingest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestHandler_Limits_RealBroker: on a real Publisher, every refused request
// leaves nothing on the broker; only the accepted ones arrive.
func TestHandler_Limits_RealBroker(t *testing.T) {
	t.Parallel()
	p, queue := startPublisher(t, brokertest.URL(t))
	serve := func(cfg ingest.Config) string {
		cfg.Timeout, cfg.MaxEvents, cfg.MaxDepth, cfg.Logger = 30*time.Second, 3, 4, quiet()
		srv := httptest.NewServer(newHandler(t, cfg))
		t.Cleanup(srv.Close)
		return srv.URL + "/events"
	}
	held := newGate(p)
	var (
		plain   = serve(ingest.Config{Publisher: p})
		gated   = serve(ingest.Config{Publisher: held, MaxInFlight: 3})
		limited = serve(ingest.Config{Publisher: p, Rate: 0.001, Burst: 3})
	)

	for _, tt := range []struct {
		name, method, contentType, body string
		wantStatus                      int
	}{
		{"too many events", "POST", "application/json", `[{"type":"R","id":"r1"},{"type":"R"},{"type":"R"},{"type":"R"}]`, 413},
		{"too deep", "POST", "application/json", `{"type":"R","id":"r2","data":[[[[1]]]]}`, 400},
		{"no Content-Type", "POST", "", `{"type":"R","id":"r3"}`, 415},
		{"text/plain", "POST", "text/plain", `{"type":"R","id":"r4"}`, 415},
		{"one bad event", "POST", "application/json", `[{"type":"R","id":"r5"},{"type":""}]`, 400},
		{"GET", "GET", "", "", 405},
	} {
		if resp, got := send(t, tt.method, plain, tt.contentType, tt.body); resp.StatusCode != tt.wantStatus {
			t.Errorf("%s: %d %v, want %d", tt.name, resp.StatusCode, got, tt.wantStatus)
		}
	}

	// Room in flight: three events held, a fourth refused at once.
	first := make(chan int, 1)
	go func() {
		resp, err := client.Post(gated, "application/json", strings.NewReader(`[{"type":"G","id":"g1"},{"type":"G","id":"g2"},{"type":"G","id":"g3"}]`))
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-held.entered
	resp, got := send(t, "POST", gated, "application/json", `{"type":"G","id":"g4"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("while three are in flight: %d Retry-After %q %v, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	close(held.release)
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("the held request: %d, want 202", code)
	}

	// Rate: a bucket of 3, refilled every 1,000 s.
	if resp, got := send(t, "POST", limited, "application/json", `[{"type":"L","id":"l1"},{"type":"L","id":"l2"},{"type":"L","id":"l3"}]`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("three events in a bucket of three: %d %v, want 202", resp.StatusCode, got)
	}
	if resp, got := send(t, "POST", limited, "application/json", `{"type":"L","id":"l4"}`); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1000" {
		t.Errorf("a fourth: %d Retry-After %q %v, want 429 Retry-After 1000", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}

	// The last accepted request: once it is confirmed, everything before it
	// on this connection has arrived.
	if resp, got := send(t, "POST", plain, "application/json", `{"type":"M","id":"marker"}`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("marker: %d %v, want 202", resp.StatusCode, got)
	}
	var ids []string
	for _, d := range brokertest.Drain(t, queue, 7, 300*time.Millisecond) {
		ids = append(ids, d.MessageId)
	}
	if want := []string{"g1", "g2", "g3", "l1", "l2", "l3", "marker"}; !slices.Equal(ids, want) {
		t.Errorf("arrived %v, want %v: the refused requests published nothing", ids, want)
	}
	if n := brokertest.Depth(t, queue); n != 0 {
		t.Errorf("%d more messages on the queue, want 0", n)
	}
}

// send sends body with contentType ("" for none) and decodes the JSON answer.
func send(t *testing.T, method, url, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, url, err)
	}
	return resp, got
}
