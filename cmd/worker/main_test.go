package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// workerBin is the worker binary. Tests run it as a process, the way it is
// deployed: signals, exit codes and streams are part of what they check.
var workerBin = proctest.NewBinary("worker", "github.com/eventfleet/eventfleet/cmd/worker")

func TestMain(m *testing.M) { proctest.Main(m) }

// proc is a running worker process, bound to its test.
type proc struct {
	*proctest.Proc
	t *testing.T
}

// unset, as a value in startWorker's env, leaves the variable out.
const unset = "\x00unset"

// startWorker runs the worker binary with exactly env (nothing inherited) and
// args. It is killed at cleanup if still running.
func startWorker(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	var kvs []string
	// Parallel workers cannot all have the default :9090; a test that
	// wants the default says METRICS_ADDR=unset.
	if _, ok := env["METRICS_ADDR"]; !ok {
		kvs = append(kvs, "METRICS_ADDR=127.0.0.1:0")
	}
	for k, v := range env {
		if v != unset {
			kvs = append(kvs, k+"="+v)
		}
	}
	return &proc{Proc: proctest.Start(t, workerBin.Path(t), kvs, args...), t: t}
}

// wait returns the exit code, failing the test if the process is still
// running after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	code, ok := p.Wait(timeout)
	if !ok {
		p.t.Fatalf("worker still running %v later", timeout)
	}
	return code
}

func (p *proc) signal(sig os.Signal) { p.t.Helper(); p.Signal(p.t, sig) }

// stop sends SIGTERM and expects exit code 0 within timeout.
func (p *proc) stop(timeout time.Duration) {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(timeout); code != 0 {
		p.t.Fatalf("worker exited with %d after SIGTERM, want 0", code)
	}
}

// waitLog polls stderr until it contains want.
func (p *proc) waitLog(want string, timeout time.Duration) {
	p.t.Helper()
	p.WaitLog(p.t, timeout, want)
}

// waitConsuming waits until the worker consumes, so its queue exists and is
// bound: events published from then on reach it.
func (p *proc) waitConsuming() { p.t.Helper(); p.waitLog(`"msg":"consuming"`, 30*time.Second) }

// app is one test's isolated broker namespace: its own exchange and app name,
// deleted at cleanup with every queue the worker declares.
type app struct {
	name     string
	exchange string
	queue    string
	dead     string
}

// newApp names an app and an exchange for t. delays must match RETRY_DELAYS
// (nil for the default), so that its delay queues are cleaned up too. Call it
// before startWorker: cleanups run last-in first-out, so the worker is killed
// before its queues are deleted and cannot declare them again.
func newApp(t *testing.T, delays ...time.Duration) app {
	t.Helper()
	a := app{name: brokertest.Name(t), exchange: brokertest.Name(t)}
	a.queue = amqp.AppQueue(a.name)
	a.dead = amqp.DeadQueue(a.queue)
	if len(delays) == 0 {
		delays = []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}
	}
	queues := []string{a.queue, a.dead, amqp.UnroutedQueue(a.exchange)}
	for _, d := range delays {
		queues = append(queues, amqp.RetryQueue(a.queue, d))
	}
	brokertest.Cleanup(t, queues, []string{a.exchange, amqp.HopsExchange(a.queue)})
	return a
}

// env is the worker's environment for a, plus extra settings.
func (a app) env(t *testing.T, extra ...string) map[string]string {
	t.Helper()
	env := map[string]string{
		"AMQP_URL":  brokertest.URL(t),
		"EXCHANGE":  a.exchange,
		"APP_NAME":  a.name,
		"LOG_LEVEL": "info",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// message is a test event as a foreign publisher would send it.
type message struct {
	id, typ, aggregate string
	body               string
	contentType        string // default application/json
}

// publish sends msgs to exchange the way our publishers do (persistent,
// confirmed, message_id, type, aggregate_id header) and waits for every
// confirm.
func publish(t *testing.T, exchange string, msgs ...message) {
	t.Helper()
	ch := brokertest.Channel(t)
	if err := ch.Confirm(false /* noWait */); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var confirms []*amqp091.DeferredConfirmation
	for _, m := range msgs {
		ct := m.contentType
		if ct == "" {
			ct = "application/json"
		}
		headers := amqp091.Table{}
		if m.aggregate != "" {
			headers[amqp.HeaderAggregateID] = m.aggregate
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, m.typ,
			false, // mandatory: the test waits for the worker's binding first
			false, // immediate
			amqp091.Publishing{
				Headers:      headers,
				ContentType:  ct,
				DeliveryMode: amqp091.Persistent,
				MessageId:    m.id,
				Type:         m.typ,
				AppId:        "test-publisher",
				Timestamp:    time.Now(),
				Body:         []byte(m.body),
			})
		if err != nil {
			t.Fatalf("publish %s: %v", m.id, err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("publish %s: not confirmed (ack %v, err %v)", msgs[i].id, ok, err)
		}
	}
}

// waitDepth polls until queue holds want ready messages.
func waitDepth(t *testing.T, queue string, want int, timeout time.Duration) {
	t.Helper()
	brokertest.Eventually(t, timeout, fmt.Sprintf("queue %s to hold %d messages", queue, want), func() bool {
		return brokertest.Depth(t, queue) == want
	})
}

// deadLetters reads the n dead letters of a, keyed by message_id, and checks
// that no more arrive.
func deadLetters(t *testing.T, a app, n int) map[string]amqp091.Delivery {
	t.Helper()
	ds := brokertest.Drain(t, a.dead, n, 5*time.Second)
	out := map[string]amqp091.Delivery{}
	for _, d := range ds {
		if _, dup := out[d.MessageId]; dup {
			t.Errorf("event %s dead-lettered twice", d.MessageId)
		}
		out[d.MessageId] = d
	}
	if len(ds) != n {
		t.Fatalf("%d dead letters, want %d", len(ds), n)
	}
	return out
}
