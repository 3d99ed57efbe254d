package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestKeyNew: `publisher key new` prints a key and the line that makes serve
// accept it, with its scope; bad arguments exit 2.
func TestKeyNew(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runBin(t, nil, nil, "key", "new", "billing-api", "--types", "Billing.#, OrderPlacedEvent")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var key, line string
	for l := range strings.SplitSeq(stdout, "\n") {
		switch {
		case strings.HasPrefix(l, ingest.KeyPrefix):
			key = l
		case strings.HasPrefix(l, "billing-api "):
			line = l
		}
	}
	keys, err := ingest.ParseKeys(line)
	if err != nil || key == "" {
		t.Fatalf("key %q, line %q (%v) in:\n%s", key, line, err, stdout)
	}
	if strings.Contains(line, key) {
		t.Errorf("the line %q holds the key itself, not its hash", line)
	}
	c, ok := keys.Authenticate(key)
	if !ok || c.Name != "billing-api" || !c.Allows("Billing.InvoiceSent") || !c.Allows("OrderPlacedEvent") || c.Allows("CardAddedToLibraryEvent") {
		t.Errorf("the printed key authenticates %v %+v, want billing-api allowed Billing.# and OrderPlacedEvent only", ok, c)
	}
	if again, _, _ := runBin(t, nil, nil, "key", "new", "billing-api"); again == stdout {
		t.Error("two runs printed the same key")
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"key"}, "publisher key new CALLER"},
		{[]string{"key", "new"}, "missing CALLER"},
		{[]string{"key", "new", "a", "b"}, `unexpected argument "b"`},
		{[]string{"key", "new", "two words"}, "caller"},
		{[]string{"key", "new", "billing", "--types", "*Event"}, "*Event"},
		{[]string{"key", "new", "billing", "--typo", "A"}, "flag provided but not defined"},
	} {
		if out, stderr, code := runBin(t, nil, nil, tt.args...); code != 2 || !strings.Contains(stderr, tt.want) || strings.Contains(out, ingest.KeyPrefix) {
			t.Errorf("publisher %q: exit %d, stderr %q, stdout %q; want exit 2 saying %q and no key", tt.args, code, stderr, out, tt.want)
		}
	}
}

// TestServe_NeedsKeys: serve authenticates by default, so without a key it
// refuses to start; PUBLISHER_AUTH=none starts with a WARN.
func TestServe_NeedsKeys(t *testing.T) {
	t.Parallel()
	exchange, _ := testExchange(t)
	env := []string{"AMQP_URL=" + brokertest.URL(t), "EXCHANGE=" + exchange, "PUBLISHER_ADDR=127.0.0.1:0"}
	_, stderr, code := runBin(t, env, nil, "serve")
	if code != 2 || !strings.Contains(stderr, "publisher key new CALLER") || !strings.Contains(stderr, "PUBLISHER_KEYS") {
		t.Errorf("serve without keys: exit %d, stderr:\n%s\nwant exit 2 saying how to make a key", code, stderr)
	}
	// Only serve needs keys: publish runs without.
	if out, stderr, code := runBin(t, env, strings.NewReader(`{"type":"A"}`+"\n"), "publish"); code != 0 {
		t.Errorf("publish without keys: exit %d, %q %q", code, out, stderr)
	}
	p := startBin(t, append(env, "PUBLISHER_AUTH=none"), nil, "serve")
	p.Poll(t, time.Minute, "the WARN about PUBLISHER_AUTH=none", func() bool {
		for _, rec := range p.logLines("PUBLISHER_AUTH=none: anyone who reaches PUBLISHER_ADDR can publish any event; use it for a local demo only") {
			if rec["level"] == "WARN" {
				return true
			}
		}
		return false
	})
}

// TestServe_Keys: through the binary, a request needs a key; a key in scope
// publishes under its caller's name, one out of scope publishes nothing.
func TestServe_Keys(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	key, err := ingest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p, base := startServe(t, brokerEnv(t, exchange, "PUBLISHER_KEYS=billing-api "+ingest.HashKey(key)+" OrderPlacedEvent"))
	post := func(auth, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", base+"/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatalf("POST %s: answer is not JSON: %v", body, err)
		}
		return resp.StatusCode, got
	}
	p.Poll(t, time.Minute, "/readyz 200", func() bool {
		resp, _ := request(t, "GET", base+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	// The health checks need no key: Fly's check probes them.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a key: %d, want 200", path, resp.StatusCode)
		}
	}
	for _, tt := range []struct {
		auth, body string
		want       int
	}{
		{"", `{"type":"OrderPlacedEvent","id":"k-1"}`, 401},
		{"Bearer " + testKey, `{"type":"OrderPlacedEvent","id":"k-2"}`, 401}, // brokerEnv's key is replaced
		{"Bearer " + key, `[{"type":"OrderPlacedEvent","id":"k-3"},{"type":"RefundIssuedEvent","id":"k-4"}]`, 403},
		{"Bearer " + key, `{"type":"OrderPlacedEvent","id":"k-5"}`, 202},
	} {
		if code, got := post(tt.auth, tt.body); code != tt.want {
			t.Errorf("POST %s: %d %v, want %d", tt.body, code, got, tt.want)
		}
	}
	arrived := brokertest.Drain(t, queue, 1, 300*time.Millisecond)
	if len(arrived) != 1 || arrived[0].MessageId != "k-5" || arrived[0].AppId != "billing-api" {
		for _, d := range arrived {
			t.Errorf("arrived %s with app_id %q", d.MessageId, d.AppId)
		}
		t.Fatal("want only k-5, with app_id billing-api (the caller, not APP_NAME)")
	}
	p.Poll(t, 10*time.Second, "an access log line naming the caller", func() bool {
		for _, rec := range p.logLines("request") {
			if rec["caller"] == "billing-api" && rec["status"] == float64(202) {
				return true
			}
		}
		return false
	})
	if strings.Contains(strings.Join(p.stderr.Lines(), "\n"), key) {
		t.Error("the publisher logged the key")
	}
}
