package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// deadURL is an AMQP URL of a local port nothing listens on: a node that is down.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port)
}

// `publish` with a down node and the live one in AMQP_URL publishes
// everything on the live one, whichever it tried first, and says which.
func TestPublish_HostListSkipsADeadNode(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	env := brokerEnv(t, exchange, "AMQP_URL="+deadURL(t)+","+brokertest.URL(t))
	p := startBin(t, env, strings.NewReader(ndjson(5)), "publish")
	if code := p.wait(t, time.Minute); code != 0 || p.stdout.String() != "published=5 failed=0\n" {
		t.Fatalf("exit %d, stdout %q; want 0 and published=5 failed=0; stderr:\n%s", code, p.stdout.String(), p.stderr.String())
	}
	if n := len(brokertest.Drain(t, queue, 5, 200*time.Millisecond)); n != 5 {
		t.Errorf("%d events arrived, want 5", n)
	}
	recs := p.logLines("connected to broker")
	if len(recs) != 1 || recs[0]["node"] != "127.0.0.1:5672" {
		t.Errorf(`"connected to broker" lines %v; want one naming node 127.0.0.1:5672`, recs)
	}
}

// `serve`'s /readyz on METRICS_ADDR names the node in use; the public one
// (PUBLISHER_ADDR) does not show broker addresses.
func TestServe_HostListReadyzNamesTheNode(t *testing.T) {
	t.Parallel()
	exchange, _ := testExchange(t)
	p, base := startServe(t, brokerEnv(t, exchange, "AMQP_URL="+deadURL(t)+","+brokertest.URL(t), "METRICS_ADDR=127.0.0.1:0"))
	var metricsAddr string
	p.Poll(t, time.Minute, "the metrics log line", func() bool {
		if recs := p.logLines("serving /metrics, /healthz and /readyz"); len(recs) > 0 {
			metricsAddr, _ = recs[0]["addr"].(string)
		}
		return metricsAddr != ""
	})
	var got map[string]any
	p.Poll(t, time.Minute, "/readyz 200", func() bool {
		var resp *http.Response
		resp, got = request(t, "GET", "http://"+metricsAddr+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	if got["broker"] != "127.0.0.1:5672" {
		t.Errorf("METRICS_ADDR /readyz = %v; want broker 127.0.0.1:5672", got)
	}
	if _, public := request(t, "GET", base+"/readyz", ""); public["broker"] != nil {
		t.Errorf("PUBLISHER_ADDR /readyz = %v; shows the broker", public)
	}
}

// An empty element of AMQP_URL stops the publisher at start naming it.
func TestCLI_HostListEmptyElement(t *testing.T) {
	t.Parallel()
	env := []string{"AMQP_URL=amqp://guest:S3cretPW@127.0.0.1:5672/,,amqp://guest:S3cretPW@127.0.0.1:5673/", "EXCHANGE=" + brokertest.Name(t)}
	_, stderr, code := runBin(t, env, strings.NewReader(ndjson(1)), "publish")
	if code != 2 || !strings.Contains(stderr, "invalid AMQP_URL=") || !strings.Contains(stderr, "URL 2 of the comma-separated list is empty") ||
		strings.Contains(stderr, "S3cretPW") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 2 naming AMQP_URL's empty element 2, no password", code, stderr)
	}
}
