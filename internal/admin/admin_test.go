package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/metrics"
)

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestServer_Endpoints(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	m := metrics.New()
	m.Published("A", metrics.Confirmed, 0)
	id := admin.NewIdentity(admin.RoleWorker, "orders")
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Metrics: m, Identity: id, Ready: func() error {
		if !ready.Load() {
			return errors.New("not consuming: connecting to the broker")
		}
		return nil
	}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	base := "http://" + srv.Addr()

	if code, body := get(t, "GET", base+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	code, body := get(t, "GET", base+"/readyz")
	var st admin.Status
	_ = json.Unmarshal([]byte(body), &st)
	if code != http.StatusServiceUnavailable || st.Reason != "not consuming: connecting to the broker" {
		t.Errorf("/readyz while not ready = %d %s", code, body)
	}
	if st.Role != "worker" || st.App != "orders" || st.Instance != id.Instance || len(id.Instance) != 16 {
		t.Errorf("/readyz names %q %q %q, want worker orders %q", st.Role, st.App, st.Instance, id.Instance)
	}
	ready.Store(true)
	if code, body := get(t, "GET", base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d %s", code, body)
	}
	if code, _ := get(t, "HEAD", base+"/readyz"); code != 200 {
		t.Errorf("HEAD /readyz = %d", code)
	}
	if code, _ := get(t, "POST", base+"/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", code)
	}
	if code, body := get(t, "GET", base+"/metrics"); code != 200 || !strings.Contains(body, `eventfleet_published_total{outcome="confirmed",type="A"} 1`) {
		t.Errorf("/metrics = %d, body lacks the count:\n%s", code, body)
	}
}

func TestStart_AddressInUseNamesTheVariable(t *testing.T) {
	t.Parallel()
	cfg := admin.Config{Addr: "127.0.0.1:0", Ready: func() error { return nil }, Logger: quiet()}
	first, err := admin.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Stop(context.Background()) }()
	cfg.Addr = first.Addr()
	_, err = admin.Start(cfg)
	if err == nil || !strings.Contains(err.Error(), "METRICS_ADDR="+first.Addr()) {
		t.Fatalf("second Start on %s: %v, want an error naming METRICS_ADDR", first.Addr(), err)
	}
	// Without metrics there is no /metrics.
	if code, _ := get(t, "GET", "http://"+first.Addr()+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without metrics = %d, want 404", code)
	}
}

// /readyz names the broker node when given one, ready or not; /healthz never
// does (it does not depend on the broker).
func TestReadyz_NamesTheBrokerNode(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	var node atomic.Value
	node.Store("10.0.0.1:5672")
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Logger: quiet(),
		Ready: func() error {
			if !ready.Load() {
				return errors.New("broker not connected")
			}
			return nil
		},
		Broker: func() string { return node.Load().(string) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	base := "http://" + srv.Addr()
	readyz := func() (int, admin.Status) {
		code, body := get(t, "GET", base+"/readyz")
		var st admin.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, st
	}
	if code, st := readyz(); code != http.StatusServiceUnavailable || st.Broker != "10.0.0.1:5672" {
		t.Errorf("/readyz not ready = %d %+v; want 503 naming the node being tried", code, st)
	}
	ready.Store(true)
	node.Store("10.0.0.2:5672")
	if code, st := readyz(); code != http.StatusOK || st.Broker != "10.0.0.2:5672" {
		t.Errorf("/readyz ready = %d %+v; want 200 naming the node in use", code, st)
	}
	if _, body := get(t, "GET", base+"/healthz"); strings.Contains(body, "broker") {
		t.Errorf("/healthz names the broker: %s", body)
	}
}
