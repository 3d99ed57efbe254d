package main

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// publisherBin is the publisher binary; the integration tests run it as a
// process, as an operator would.
var publisherBin = proctest.NewBinary("publisher", "github.com/eventfleet/eventfleet/cmd/publisher")

func TestMain(m *testing.M) { proctest.Main(m) }

// proc is a running publisher binary.
type proc struct {
	*proctest.Proc
	stdout, stderr *proctest.Buffer // the Proc's, as pointers so that %s prints them
	args           []string
}

// unsetMetricsAddr in startBin's env leaves METRICS_ADDR out.
const unsetMetricsAddr = "METRICS_ADDR=\x00unset"

// startBin runs the binary with only env in its environment, so the test's
// own AMQP_URL and friends never leak in, and stdin as its standard input. It
// is killed at cleanup if it is still running.
func startBin(t *testing.T, env []string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	// METRICS_ADDR: parallel servers cannot all have the default :9090;
	// env, later in the list, overrides it, and unsetMetricsAddr drops it.
	kvs := []string{"METRICS_ADDR=127.0.0.1:0"}
	for _, kv := range env {
		if kv == unsetMetricsAddr {
			kvs = slices.DeleteFunc(kvs, func(s string) bool { return strings.HasPrefix(s, "METRICS_ADDR=") })
			continue
		}
		kvs = append(kvs, kv)
	}
	p := &proc{Proc: proctest.StartInput(t, publisherBin.Path(t), kvs, stdin, args...), args: args}
	p.stdout, p.stderr = &p.Stdout, &p.Stderr
	return p
}

// wait returns the exit code, failing t if the process outlives timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	code, ok := p.Wait(timeout)
	if !ok {
		t.Fatalf("publisher %v still running after %v; stderr:\n%s", p.args, timeout, p.stderr)
	}
	return code
}

// runBin runs the binary to its end.
func runBin(t *testing.T, env []string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startBin(t, env, stdin, args...)
	code = p.wait(t, 2*time.Minute)
	return p.stdout.String(), p.stderr.String(), code
}

// logLines returns the JSON log records of the process's stderr whose msg is msg.
func (p *proc) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range p.stderr.Lines() {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// testExchange makes a fresh exchange for t with a queue bound to it for
// "#", so the test reads every event that arrived. Both are deleted at
// cleanup, with the unrouted queue the publisher declares.
func testExchange(t *testing.T) (exchange, queue string) {
	t.Helper()
	return brokertest.TopicExchange(t, func(x string) []string { return []string{amqp.UnroutedQueue(x)} })
}

// testKey is the API key the tests' `serve` accepts, for the caller
// publisher-test (the APP_NAME, so that app_id reads the same either way).
const testKey = "efk_test_0123456789abcdefghijklmnopqrstuvwxyzABCD"

// brokerEnv is the environment for a publisher on the test broker.
func brokerEnv(t *testing.T, exchange string, extra ...string) []string {
	return append([]string{
		"AMQP_URL=" + brokertest.URL(t),
		"EXCHANGE=" + exchange,
		"APP_NAME=publisher-test",
		"LOG_LEVEL=debug",
		"PUBLISHER_KEYS=publisher-test " + ingest.HashKey(testKey),
	}, extra...)
}

// checkMessage verifies the AMQP properties the publisher promises.
func checkMessage(t *testing.T, d amqp091.Delivery, exchange, id, typ, aggregateID, data string) {
	t.Helper()
	if d.Exchange != exchange || d.RoutingKey != typ {
		t.Errorf("message %s: exchange %q key %q, want %q %q", id, d.Exchange, d.RoutingKey, exchange, typ)
	}
	if d.ContentType != "application/json" {
		t.Errorf("message %s: content_type %q, want application/json", id, d.ContentType)
	}
	if d.DeliveryMode != amqp091.Persistent {
		t.Errorf("message %s: delivery mode %d, want 2 (persistent)", id, d.DeliveryMode)
	}
	if id != "" && d.MessageId != id {
		t.Errorf("message_id %q, want %q", d.MessageId, id)
	}
	if d.Type != typ {
		t.Errorf("message %s: type %q, want %q", id, d.Type, typ)
	}
	if d.AppId != "publisher-test" {
		t.Errorf("message %s: app_id %q, want publisher-test", id, d.AppId)
	}
	if got, _ := d.Headers[amqp.HeaderAggregateID].(string); got != aggregateID {
		t.Errorf("message %s: header aggregate_id %q, want %q", id, got, aggregateID)
	}
	if string(d.Body) != data {
		t.Errorf("message %s: body %.80q, want %.80q", id, d.Body, data)
	}
	if d.Timestamp.IsZero() {
		t.Errorf("message %s: no timestamp", id)
	}
}
