package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

func TestCLI_Usage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"no command", nil, 2, nil, []string{"Usage:", "publish", "serve"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`, "Usage:"}},
		{"-h", []string{"-h"}, 0, []string{"publisher publish [--file FILE]", "publisher serve", "AMQP_URL",
			"EXCHANGE", "APP_NAME", "LOG_LEVEL", "PUBLISH_WINDOW", "PUBLISH_TIMEOUT", "PUBLISHER_ADDR",
			"PUBLISHER_MAX_BODY", "SHUTDOWN_TIMEOUT"}, nil},
		{"--help", []string{"--help"}, 0, []string{"Usage:", "publisher serve"}, nil},
		{"publish -h", []string{"publish", "-h"}, 0, []string{"-file FILE", "Usage:"}, nil},
		{"publish unknown flag", []string{"publish", "--fil", "x"}, 2, nil, []string{"flag provided but not defined: -fil"}},
		{"serve extra argument", []string{"serve", "now"}, 2, nil, []string{`unexpected argument "now"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, nil, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.wantStdout == nil && stdout != "" {
				t.Errorf("unexpected stdout:\n%s", stdout)
			}
		})
	}
}

func TestCLI_BadEnvironment(t *testing.T) {
	t.Parallel()
	const password = "Hunter2-not-for-logs"
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantVar string
	}{
		{"window not a number", []string{"serve"}, []string{"PUBLISH_WINDOW=abc"}, "PUBLISH_WINDOW"},
		{"window zero", []string{"publish"}, []string{"PUBLISH_WINDOW=0"}, "PUBLISH_WINDOW"},
		{"timeout not a duration", []string{"publish"}, []string{"PUBLISH_TIMEOUT=soon"}, "PUBLISH_TIMEOUT"},
		{"max body zero", []string{"serve"}, []string{"PUBLISHER_MAX_BODY=0"}, "PUBLISHER_MAX_BODY"},
		{"shutdown timeout negative", []string{"serve"}, []string{"SHUTDOWN_TIMEOUT=-1s"}, "SHUTDOWN_TIMEOUT"},
		{"log level", []string{"serve"}, []string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"topology mode", []string{"serve"}, []string{"TOPOLOGY=lazy"}, "TOPOLOGY"},
		{"topology mode, publish", []string{"publish"}, []string{"TOPOLOGY=Passive"}, "TOPOLOGY"},
		{"not an AMQP URL", []string{"serve"}, []string{"AMQP_URL=http://user:" + password + "@host/"}, "AMQP_URL"},
		{"missing TLS CA file", []string{"publish"}, []string{"AMQP_URL=amqps://user:" + password + "@host/",
			"AMQP_TLS_CA_FILE=/nonexistent/ca.pem"}, "AMQP_TLS_CA_FILE"},
		{"TLS key without certificate", []string{"serve"}, []string{"AMQP_URL=amqps://user:" + password + "@host/",
			"AMQP_TLS_KEY_FILE=/nonexistent/key.pem"}, "AMQP_TLS_CERT_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, tt.env, strings.NewReader(`{"type":"A"}`), tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.wantVar) {
				t.Errorf("stderr does not name %s:\n%s", tt.wantVar, stderr)
			}
			if strings.Contains(stderr, password) {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing: no event was read", stdout)
			}
		})
	}
}

// publishCase is one `publisher publish` run on the broker.
type publishCase struct {
	name       string
	input      []string // lines, joined with "\n"
	viaFile    bool
	wantStdout string
	wantCode   int
	wantStderr []string
	want       []wantMessage
}

type wantMessage struct {
	id, typ, aggregateID, data string // id "" means a generated UUIDv7
}

func TestPublish_Broker(t *testing.T) {
	t.Parallel()

	// A few hundred valid lines with invalid ones mixed in.
	var fileLines []string
	var fileWant []wantMessage
	bad := map[int]string{ // line number -> line
		7:   `{"type":"Broken",`,
		50:  `{"aggregate_id":"no-type"}`,
		120: `{"type":"Card","agregate_id":"typo"}`,
		200: `{"type":"Card.#"}`,
		250: `{"type":"Card"}}`,
	}
	for n := 1; len(fileWant) < 300; n++ {
		if l, ok := bad[n]; ok {
			fileLines = append(fileLines, l)
			continue
		}
		if n%40 == 0 {
			fileLines = append(fileLines, "  ")
			continue
		}
		w := wantMessage{typ: []string{"CardAddedToLibraryEvent", "Library.Renamed"}[n%2],
			aggregateID: fmt.Sprintf("lib-%d", n%7), data: fmt.Sprintf(`{"n": %d, "title": "été \u2603"}`, n)}
		in := map[string]any{"type": w.typ, "data": json.RawMessage(w.data)}
		if n%3 != 0 {
			w.id = fmt.Sprintf("evt-%d-%s", n, uuid.NewString())
			in["id"] = w.id
		}
		if n%5 != 0 {
			in["aggregate_id"] = w.aggregateID
		} else {
			w.aggregateID = ""
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		// json.Marshal compacts the RawMessage; keep the data as written.
		line := strings.Replace(string(b), string(compact(t, w.data)), w.data, 1)
		if n == 11 {
			line += "\r"
		}
		fileLines = append(fileLines, line)
		fileWant = append(fileWant, w)
	}

	big := `{"blob":"` + strings.Repeat("b", 2<<20) + `"}`
	tests := []publishCase{
		{
			name:       "file with invalid lines",
			input:      fileLines,
			viaFile:    true,
			wantStdout: "published=300 failed=5\n",
			wantCode:   1,
			wantStderr: []string{"line 7: invalid JSON: ", "line 50: event type is missing",
				`line 120: invalid JSON: json: unknown field "agregate_id"`, `line 200: invalid event type "Card.#"`,
				"line 250: invalid JSON: "},
			want: fileWant,
		},
		{
			name:       "stdin all valid",
			input:      []string{`{"type":"A","id":"a-1"}`, ``, `{"type":"B","aggregate_id":"agg","data":[1, 2]}`},
			wantStdout: "published=2 failed=0\n",
			wantCode:   0,
			want:       []wantMessage{{id: "a-1", typ: "A", data: "{}"}, {typ: "B", aggregateID: "agg", data: "[1, 2]"}},
		},
		{
			name: "line over 16 MiB is skipped, a 2 MiB one is published",
			input: []string{`{"type":"A","id":"before"}`, strings.Repeat("x", 16<<20+1),
				`{"type":"Big","id":"big","data":` + big + `}`},
			wantStdout: "published=2 failed=1\n",
			wantCode:   1,
			wantStderr: []string{"line 2: line too long: longer than 16777216 bytes"},
			want:       []wantMessage{{id: "before", typ: "A", data: "{}"}, {id: "big", typ: "Big", data: big}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exchange, queue := testExchange(t)
			input := strings.Join(tt.input, "\n") + "\n"
			args := []string{"publish"}
			var stdin io.Reader = strings.NewReader(input)
			if tt.viaFile {
				path := filepath.Join(t.TempDir(), "events.ndjson")
				if err := os.WriteFile(path, []byte(input), 0o600); err != nil {
					t.Fatal(err)
				}
				args, stdin = append(args, "--file", path), nil
			}
			stdout, stderr, code := runBin(t, brokerEnv(t, exchange, "PUBLISH_WINDOW=64"), stdin, args...)
			if stdout != tt.wantStdout || code != tt.wantCode {
				t.Fatalf("stdout %q exit %d, want %q exit %d; stderr:\n%.3000s", stdout, code, tt.wantStdout, tt.wantCode, stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%.3000s", w, stderr)
				}
			}
			// Every event was confirmed before the process exited.
			got := brokertest.Drain(t, queue, -1, 300*time.Millisecond)
			checkArrived(t, exchange, got, tt.want)
			if n := brokertest.Depth(t, amqp.UnroutedQueue(exchange)); n != 0 {
				t.Errorf("%d events in the unrouted queue, want 0", n)
			}
		})
	}
}

func compact(t *testing.T, s string) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkArrived matches deliveries to wanted events, by id or else by body,
// and fails on anything missing, extra or duplicated.
func checkArrived(t *testing.T, exchange string, got []amqp091.Delivery, want []wantMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d messages arrived, want %d", len(got), len(want))
	}
	byID := map[string]amqp091.Delivery{}
	byBody := map[string]amqp091.Delivery{}
	for _, d := range got {
		if _, dup := byID[d.MessageId]; dup {
			t.Errorf("message %s arrived twice", d.MessageId)
		}
		byID[d.MessageId] = d
		byBody[string(d.Body)] = d
	}
	for _, w := range want {
		d, ok := byID[w.id]
		if w.id == "" {
			d, ok = byBody[w.data]
			if u, err := uuid.Parse(d.MessageId); ok && (err != nil || u.Version() != 7) {
				t.Errorf("message_id %q, want a generated UUIDv7", d.MessageId)
			}
		}
		if !ok {
			t.Errorf("event %+.80v did not arrive", w)
			continue
		}
		checkMessage(t, d, exchange, w.id, w.typ, w.aggregateID, w.data)
	}
}

// TestPublish_BrokerDown: with no broker, publish waits PUBLISH_TIMEOUT for
// one, then fails every event, without showing the password.
func TestPublish_BrokerDown(t *testing.T) {
	t.Parallel()
	const password = "Zq8-publish-secret"
	env := []string{"AMQP_URL=amqp://guest:" + password + "@127.0.0.1:1/", "PUBLISH_TIMEOUT=1s", "EXCHANGE=" + brokertest.Name(t)}
	start := time.Now()
	stdout, stderr, code := runBin(t, env, strings.NewReader(ndjson(5)), "publish")
	if time.Since(start) < time.Second {
		t.Errorf("failed after %v, before PUBLISH_TIMEOUT (1s) ran out", time.Since(start))
	}
	if stdout != "published=0 failed=5\n" || code != 1 {
		t.Errorf("stdout %q exit %d, want published=0 failed=5 exit 1", stdout, code)
	}
	if !strings.Contains(stderr, "line 1: event e-0 not published: no broker connection") {
		t.Errorf("stderr does not report line 1:\n%s", stderr)
	}
	if strings.Contains(stderr, password) {
		t.Errorf("stderr shows the password:\n%s", stderr)
	}
}

// TestCLI_TopologyMismatch: an existing exchange of another type is a fatal
// error, reported with exit code 1 by both commands.
func TestCLI_TopologyMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        []string
		stdin      string
		wantStdout string
	}{
		{"publish", []string{"publish"}, nil, ndjson(3), "published=0 failed=3\n"},
		{"serve", []string{"serve"}, []string{"PUBLISHER_ADDR=127.0.0.1:0"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exchange := brokertest.Name(t)
			brokertest.Cleanup(t, []string{amqp.UnroutedQueue(exchange)}, []string{exchange})
			if err := brokertest.Channel(t).ExchangeDeclare(exchange, amqp091.ExchangeDirect,
				false, // durable
				true,  // autoDelete
				false, // internal
				false, // noWait
				nil); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runBin(t, brokerEnv(t, exchange, tt.env...), strings.NewReader(tt.stdin), tt.args...)
			if stdout != tt.wantStdout || code != 1 {
				t.Errorf("stdout %q exit %d, want %q exit 1", stdout, code, tt.wantStdout)
			}
			if !strings.Contains(stderr, "amqp: existing topology does not match the configuration: exchange") {
				t.Errorf("stderr does not explain the mismatch:\n%s", stderr)
			}
		})
	}
}

func TestServe_AddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := runBin(t, []string{"PUBLISHER_ADDR=" + ln.Addr().String(), "EXCHANGE=" + brokertest.Name(t), "PUBLISHER_AUTH=none"}, nil, "serve")
	if code != 1 || !strings.Contains(stderr, "listen on PUBLISHER_ADDR="+ln.Addr().String()) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming PUBLISHER_ADDR", code, stderr)
	}
}

// startServe runs `publisher serve` on a port the kernel picks and returns
// its base URL, read from the "listening" log line.
func startServe(t *testing.T, env []string) (*proc, string) {
	t.Helper()
	p := startBin(t, append(env, "PUBLISHER_ADDR=127.0.0.1:0"), nil, "serve")
	var addr string
	p.Poll(t, time.Minute, "the listening log line", func() bool {
		if recs := p.logLines("listening"); len(recs) > 0 {
			addr, _ = recs[0]["addr"].(string)
		}
		return addr != ""
	})
	return p, "http://" + addr
}

var client = &http.Client{Timeout: time.Minute}

func request(t *testing.T, method, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, url, err)
	}
	return resp, got
}

func TestServe_Broker(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	p, base := startServe(t, brokerEnv(t, exchange, "SHUTDOWN_TIMEOUT=5s"))

	p.Poll(t, time.Minute, "/readyz 200", func() bool {
		resp, _ := request(t, "GET", base+"/readyz", "")
		return resp.StatusCode == http.StatusOK
	})
	if resp, got := request(t, "GET", base+"/healthz", ""); resp.StatusCode != 200 || got["status"] != "ok" || got["role"] != "publisher" {
		t.Errorf("/healthz %d %v, want 200 with status ok, role publisher", resp.StatusCode, got)
	}
	// The container health check asks the same /readyz.
	if out, stderr, code := runBin(t, []string{"METRICS_ADDR=off", "PUBLISHER_ADDR=" + strings.TrimPrefix(base, "http://")}, nil, "health"); code != 0 || out != "ready\n" {
		t.Errorf("publisher health: exit %d, %q %q; want 0 and ready", code, out, stderr)
	}

	resp, got := request(t, "POST", base+"/events", `{"type":"CardAdded","id":"one","aggregate_id":"lib-1","data":{"title":"Dune"}}`)
	if resp.StatusCode != http.StatusAccepted || !slices.Equal(strs(got["ids"]), []string{"one"}) {
		t.Fatalf("POST one event: %d %v, want 202 with ids [one]", resp.StatusCode, got)
	}
	resp, got = request(t, "POST", base+"/events", `[{"type":"A","id":"two"},{"type":"B","data":[true]},{"type":"C","id":"four","aggregate_id":"x"}]`)
	ids := strs(got["ids"])
	if resp.StatusCode != http.StatusAccepted || len(ids) != 3 || ids[0] != "two" || ids[2] != "four" {
		t.Fatalf("POST array: %d %v, want 202 with 3 ids", resp.StatusCode, got)
	}
	if resp, got := request(t, "POST", base+"/events", `[{"type":"A"},{"type":"*"}]`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST invalid array: %d %v, want 400", resp.StatusCode, got)
	}
	// /metrics is on METRICS_ADDR, not on the (often public) events port.
	if resp, _ := request(t, "GET", base+"/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on PUBLISHER_ADDR = %d, want 404", resp.StatusCode)
	}
	var metricsAddr string
	if recs := p.logLines("serving /metrics, /healthz and /readyz"); len(recs) > 0 {
		metricsAddr, _ = recs[0]["addr"].(string)
	}
	mresp, err := client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`eventfleet_published_total{outcome="confirmed",type="CardAdded"} 1`,
		`eventfleet_published_total{outcome="confirmed",type="C"} 1`,
		`eventfleet_connection_up{role="publisher"} 1`,
	} {
		if !strings.Contains(string(mbody), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// 202 is sent only after the confirms, so everything is there now.
	arrived := brokertest.Drain(t, queue, -1, 300*time.Millisecond)
	checkArrived(t, exchange, arrived, []wantMessage{
		{id: "one", typ: "CardAdded", aggregateID: "lib-1", data: `{"title":"Dune"}`},
		{id: "two", typ: "A", data: "{}"},
		{id: ids[1], typ: "B", data: "[true]"},
		{id: "four", typ: "C", aggregateID: "x", data: "{}"},
	})

	p.Signal(t, syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	if len(p.logLines("stopped")) != 1 {
		t.Errorf("no clean stop logged:\n%s", p.stderr)
	}
}

// TestServe_BrokerDown: with no broker, /readyz is 503 and events are
// answered 503 within PUBLISH_TIMEOUT; a request in flight when SIGINT
// arrives still gets its answer (TestServe_Broker sends SIGTERM); the
// password never shows.
func TestServe_BrokerDown(t *testing.T) {
	t.Parallel()
	const password = "Zq8-serve-secret"
	p, base := startServe(t, []string{"AMQP_URL=amqp://guest:" + password + "@127.0.0.1:1/",
		"PUBLISH_TIMEOUT=1s", "SHUTDOWN_TIMEOUT=20s", "LOG_LEVEL=debug", "EXCHANGE=" + brokertest.Name(t),
		"PUBLISHER_KEYS=publisher-test " + ingest.HashKey(testKey)})

	if resp, got := request(t, "GET", base+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.HasPrefix(fmt.Sprint(got["reason"]), "broker not connected") {
		t.Errorf("/readyz %d %v, want 503 with reason broker not connected", resp.StatusCode, got)
	}
	// Liveness never depends on the broker.
	if resp, got := request(t, "GET", base+"/healthz", ""); resp.StatusCode != 200 || got["status"] != "ok" {
		t.Errorf("/healthz %d %v, want 200 with status ok", resp.StatusCode, got)
	}
	if _, stderr, code := runBin(t, []string{"METRICS_ADDR=off", "PUBLISHER_ADDR=" + strings.TrimPrefix(base, "http://")}, nil, "health"); code != 1 || !strings.Contains(stderr, "not ready") {
		t.Errorf("publisher health with no broker: exit %d, stderr %q; want 1 and not ready", code, stderr)
	}
	resp, got := request(t, "POST", base+"/events", `{"type":"A","id":"lost"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!slices.Equal(strs(got["unconfirmed"]), []string{"lost"}) {
		t.Errorf("POST: %d Retry-After %q %v, want 503 with Retry-After and unconfirmed [lost]",
			resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}

	// A request in flight: it waits for its PUBLISH_TIMEOUT while we SIGTERM.
	before := len(p.logLines("publishing events"))
	inFlight := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/events", strings.NewReader(`{"type":"A","id":"in-flight"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := client.Do(req)
		if err != nil {
			inFlight <- -1
			return
		}
		resp.Body.Close()
		inFlight <- resp.StatusCode
	}()
	p.Poll(t, time.Minute, "the second request to reach the publisher", func() bool {
		return len(p.logLines("publishing events")) > before
	})
	p.Signal(t, syscall.SIGINT)
	if status := <-inFlight; status != http.StatusServiceUnavailable {
		t.Errorf("in-flight request got %d, want its 503 answer despite the shutdown", status)
	}
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0", code)
	}
	if n := len(p.logLines("events not confirmed")); n != 2 {
		t.Errorf("%d 'events not confirmed' logs, want 2", n)
	}
	if !strings.Contains(p.stderr.String(), "amqp://guest:xxxxx@127.0.0.1:1/") {
		t.Errorf("the redacted broker URL is not logged:\n%s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), password) {
		t.Errorf("stderr shows the password:\n%s", p.stderr)
	}
}

// TestServe_MetricsSharesThePortWhenAsked: METRICS_ADDR equal to
// PUBLISHER_ADDR serves /metrics on the events port and opens no other.
func TestServe_MetricsSharesThePortWhenAsked(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // free again for the server; a race with another process is unlikely
	exchange, _ := testExchange(t)
	p := startBin(t, append(brokerEnv(t, exchange), "PUBLISHER_ADDR="+addr, "METRICS_ADDR="+addr), nil, "serve")
	p.Poll(t, time.Minute, "the listening log line", func() bool { return len(p.logLines("listening")) > 0 })
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "eventfleet_connection_up") {
		t.Errorf("GET /metrics on the shared port = %d:\n%.300s", resp.StatusCode, body)
	}
	if n := len(p.logLines("serving /metrics, /healthz and /readyz")); n != 0 {
		t.Errorf("a second endpoint server was started for the shared address")
	}
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
