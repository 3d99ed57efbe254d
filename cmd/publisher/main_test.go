package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// binPath is the publisher binary that TestMain builds once; the integration
// tests run it as a process, as an operator would.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "publisher-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// With -race when the tests run with it, so that races in the binary
	// fail these tests too.
	binPath, err = proctest.Build(dir, "publisher", ".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	// goleak.VerifyTestMain would exit before the binary is removed.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a running publisher binary.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *proctest.Buffer
	exited         chan struct{}
	code           int // valid once exited is closed
}

// unsetMetricsAddr in startBin's env leaves METRICS_ADDR out.
const unsetMetricsAddr = "METRICS_ADDR=\x00unset"

// startBin runs the binary with only PATH and env in its environment, so the
// test's own AMQP_URL and friends never leak in. It is killed at cleanup if
// it is still running.
func startBin(t *testing.T, env []string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	// METRICS_ADDR: parallel servers cannot all have the default :9090;
	// env, later in the list, overrides it, and unsetMetricsAddr drops it.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "METRICS_ADDR=127.0.0.1:0"}
	for _, kv := range env {
		if kv == unsetMetricsAddr {
			cmd.Env = slices.DeleteFunc(cmd.Env, func(s string) bool { return strings.HasPrefix(s, "METRICS_ADDR=") })
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if g := os.Getenv("GORACE"); g != "" {
		cmd.Env = append(cmd.Env, "GORACE="+g)
	}
	cmd.Stdin = stdin
	p := &proc{cmd: cmd, stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start publisher: %v", err)
	}
	go func() {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			p.code = exitErr.ExitCode()
		default:
			p.code = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit code, failing t if the process outlives timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("publisher %v still running after %v; stderr:\n%s", p.cmd.Args[1:], timeout, p.stderr)
		return 0
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
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
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// poll calls cond every 20ms until it is true, failing t after timeout or
// when the process exits first.
func (p *proc) poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if !p.running() {
			t.Fatalf("publisher exited with code %d while waiting for %s; stderr:\n%s", p.code, what, p.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; stderr:\n%s", timeout, what, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testExchange makes a fresh exchange for t with a queue bound to it for
// "#", so the test reads every event that arrived. Both are deleted at
// cleanup, with the unrouted queue the publisher declares.
func testExchange(t *testing.T) (exchange, queue string) {
	t.Helper()
	exchange = brokertest.Name(t)
	queue = exchange + ".all"
	brokertest.Cleanup(t, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	ch := brokertest.Channel(t)
	// Declared exactly as the publisher declares it, so that it matches.
	if err := ch.ExchangeDeclare(exchange, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	if _, err := ch.QueueDeclare(queue,
		false, // durable: a test queue
		false, // autoDelete: Drain reads it on other connections
		false, // exclusive: same reason
		false, // noWait
		nil); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false /* noWait */, nil); err != nil {
		t.Fatalf("bind queue: %v", err)
	}
	return exchange, queue
}

// brokerEnv is the environment for a publisher on the test broker.
func brokerEnv(t *testing.T, exchange string, extra ...string) []string {
	return append([]string{
		"AMQP_URL=" + brokertest.URL(t),
		"EXCHANGE=" + exchange,
		"APP_NAME=publisher-test",
		"LOG_LEVEL=debug",
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
