package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestWorker_HostListMovesWhenItsNodeGoes runs `worker run` with two
// addresses in AMQP_URL (two proxies to the test broker stand in for two
// nodes): /readyz names the node in use; when that node goes away and
// refuses, the worker moves to the other one, says so, and keeps consuming.
func TestWorker_HostListMovesWhenItsNodeGoes(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	proxies := map[string]*brokertest.Proxy{}
	var urls []string
	for range 2 {
		p := brokertest.NewProxy(t)
		u := p.URL(t)
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		proxies[pu.Host] = p
		urls = append(urls, u)
	}
	p := startWorker(t, a.env(t, "AMQP_URL="+strings.Join(urls, ","), "METRICS_ADDR=127.0.0.1:0"))
	base := "http://" + adminAddr(t, p)
	p.waitConsuming()
	readyz := func() (int, string) {
		code, body := httpGet(t, base+"/readyz")
		var st struct{ Broker string }
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, st.Broker
	}
	var first string
	brokertest.Eventually(t, 10*time.Second, "/readyz 200 naming a node", func() bool {
		code, node := readyz()
		first = node
		return code == http.StatusOK && proxies[node] != nil
	})
	publish(t, a.exchange, message{id: "on-first", typ: cardAdded, body: `{}`})
	brokertest.Eventually(t, 10*time.Second, "the event handled", func() bool { return len(p.Stdout.Lines()) == 1 })

	proxies[first].SetRefuse(true)
	proxies[first].Cut()
	var second string
	brokertest.Eventually(t, 10*time.Second, "/readyz 200 on the other node", func() bool {
		code, node := readyz()
		second = node
		return code == http.StatusOK && node != first
	})
	if proxies[second] == nil {
		t.Fatalf("/readyz names %q, not one of the listed nodes", second)
	}
	publish(t, a.exchange, message{id: "on-second", typ: cardAdded, body: `{}`})
	brokertest.Eventually(t, 10*time.Second, "the event handled on the other node", func() bool {
		return strings.Contains(strings.Join(p.Stdout.Lines(), "\n"), "on-second")
	})
	// The logs say which node was left and which one is used now.
	nodes := map[string]string{}
	for _, l := range p.Stderr.Lines() {
		var line struct{ Msg, Node string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Node != "" {
			nodes[line.Msg] = line.Node
		}
	}
	if nodes["consumer stopped; reconnecting"] != first || nodes["consuming again"] != second {
		t.Errorf("logs name the nodes %v; want the lost %s and the new %s", nodes, first, second)
	}
}

// An AMQP_URL list with an invalid element stops `worker run` at start
// (exit 2) naming AMQP_URL and the element, without a password.
func TestWorker_HostListInvalidElement(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	p := startWorker(t, a.env(t, "AMQP_URL="+brokertest.URL(t)+",amqp://guest:S3cretPW@127.0.0.1:99999/"))
	if code := p.wait(30 * time.Second); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	stderr := strings.Join(p.Stderr.Lines(), "\n")
	if !strings.Contains(stderr, "invalid AMQP_URL=") || !strings.Contains(stderr, "URL 2 of the comma-separated list") ||
		!strings.Contains(stderr, "port out of range") || strings.Contains(stderr, "S3cretPW") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// `worker dlq` connects to a live node of the list; with none, its error
// names every node it tried.
func TestDLQ_HostList(t *testing.T) {
	t.Parallel()
	a := newApp(t) // never run: reaching the broker shows as "no dead-letter queue"
	dead := func() string {
		port := brokertest.FreePort(t)
		return "amqp://guest:S3cretPW@127.0.0.1:" + strconv.Itoa(port) + "/"
	}
	d1, d2 := dead(), dead()
	r := dlqRun(t, a.env(t, "AMQP_URL="+d1+","+brokertest.URL(t)), "list")
	r.expect(t, 2)
	if !strings.Contains(r.stderr, "no dead-letter queue "+a.dead) {
		t.Errorf("stderr %q; want it to reach the broker and find no dead-letter queue", r.stderr)
	}
	r = dlqRun(t, a.env(t, "AMQP_URL="+d1+","+d2), "list")
	r.expect(t, 1)
	for _, u := range []string{d1, d2} {
		if want := "connect to " + strings.Replace(u, "S3cretPW", "xxxxx", 1) + ": TCP connect"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not name %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "S3cretPW") {
		t.Errorf("stderr shows the password: %s", r.stderr)
	}
}
