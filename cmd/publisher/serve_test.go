package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/metrics"
)

// batchPublisher confirms every batch; connected says what Connected reports.
type batchPublisher struct {
	connected atomic.Bool
	batches   atomic.Int32
}

func (b *batchPublisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	b.batches.Add(1)
	for i := range evs {
		if evs[i].ID == "" {
			evs[i].ID = event.NewID()
		}
	}
	return nil
}

func (b *batchPublisher) Connected() bool { return b.connected.Load() }

// TestPublicMux: PUBLISHER_ADDR serves POST /events, and /healthz and
// /readyz in the one shape internal/admin gives them on METRICS_ADDR.
func TestPublicMux(t *testing.T) {
	t.Parallel()
	pub := &batchPublisher{}
	events, err := ingest.New(ingest.Config{Publisher: pub, Auth: ingest.AuthNone, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	id := admin.NewIdentity(admin.RolePublisher, "orders")
	ready := func() error {
		if !pub.Connected() {
			return errors.New("broker not connected")
		}
		return nil
	}
	tests := []struct {
		name       string
		shared     *metrics.Metrics
		connected  bool
		method     string
		path, body string
		wantStatus int
		want       map[string]string // fields of the JSON answer; nil: not JSON
	}{
		{name: "healthz while disconnected", method: "GET", path: "/healthz", wantStatus: 200,
			want: map[string]string{"status": "ok", "role": "publisher", "app": "orders", "instance": id.Instance}},
		{name: "readyz while disconnected", method: "GET", path: "/readyz", wantStatus: 503,
			want: map[string]string{"status": "not ready", "reason": "broker not connected", "role": "publisher", "instance": id.Instance}},
		{name: "readyz connected", connected: true, method: "GET", path: "/readyz", wantStatus: 200,
			want: map[string]string{"status": "ready", "role": "publisher", "app": "orders"}},
		{name: "readyz POST", method: "POST", path: "/readyz", wantStatus: 405},
		{name: "events", connected: true, method: "POST", path: "/events", body: `{"type":"A","id":"a"}`, wantStatus: 202},
		{name: "unknown path", method: "GET", path: "/event", wantStatus: 404, want: map[string]string{"error": "not found: POST events to /events"}},
		{name: "no metrics unless shared", method: "GET", path: "/metrics", wantStatus: 404},
		{name: "metrics when shared", shared: metrics.New(), method: "GET", path: "/metrics", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub.connected.Store(tt.connected)
			mux := publicMux(events, tt.shared, id, ready)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json") // required by POST /events
			}
			mux.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.want == nil {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q is not JSON: %v", rec.Body, err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %q (answer %v)", k, got[k], v, got)
				}
			}
			if _, ok := got["broker_connected"]; ok {
				t.Errorf("answer %v has broker_connected: the one shape is internal/admin's", got)
			}
		})
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
