package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/eventlog"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/webhook"
)

// The paths rows: each shipped binary path with its defaults, against a bare
// reference in this process doing the same work. The worker rows time the
// binary from process start until the queue is empty and every event was
// handled (printed, or received by the webhook target), the bare consumers
// from dial to their last ack.

// pathPair names the bare reference of a binary row ("bin-x" → "bare-x").
// The relay's Redis and NATS sources share the relay's: the bare publish
// limit.
func pathPair(id string) string {
	if isBridgeRow(id) {
		return "bare-relay"
	}
	if len(id) > 4 && id[:4] == "bin-" {
		return "bare-" + id[4:]
	}
	return ""
}

// isBridgeRow reports whether id is a row of the relay's Redis or NATS
// sources (issue 18: measured against the bare publish limit, no target).
func isBridgeRow(id string) bool {
	return strings.HasPrefix(id, "bin-relay-redis") || id == "bin-relay-jetstream"
}

// runWorkerBinary fills a fresh app's queue with n messages, then times
// cmd/worker with its defaults and HANDLER=handler draining it.
func (b *bench) runWorkerBinary(ctx context.Context, n int, handler string) (measurement, error) {
	exchange, app := b.name("x"), b.name("app")
	qs, xs := workerNames(exchange, app)
	b.adm.track(qs, xs)
	defer b.cleanup(qs, xs)
	queue := amqp.AppQueue(app)

	var target *webhookTarget
	url := ""
	if handler == "webhook" {
		var err error
		if target, err = newWebhookTarget(); err != nil {
			return measurement{}, err
		}
		defer target.close()
		url = target.url()
	}
	env := b.defaultWorkerEnv(exchange, app, handler, url)
	if _, _, err := b.declareWorkerProc(ctx, env, 0); err != nil {
		return measurement{}, fmt.Errorf("declare: %w", err)
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(queue, n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	handled := func(p *workerProc) int64 { return p.lines.Load() }
	if target != nil {
		handled = func(*workerProc) int64 { return target.received.Load() }
	}

	deadline := time.Now().Add(b.o.timeout)
	t := b.startTimer()
	p, err := b.startWorkerEnv(ctx, env)
	if err != nil {
		return t.stop(), err
	}
	defer p.stop()
	stopPerf := b.perfRecord(p.cmd.Process.Pid)
	for {
		select {
		case <-p.exited:
			stopPerf()
			return t.stop(), fmt.Errorf("worker exited after %d of %d events (%v): %s", handled(p), n, p.exitErr, p.stderrTail())
		default:
		}
		if handled(p) >= int64(n) {
			if ready, err := b.adm.ready(queue); err != nil {
				stopPerf()
				return t.stop(), err
			} else if ready == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			stopPerf()
			return t.stop(), fmt.Errorf("%d of %d events handled within %v", handled(p), n, b.o.timeout)
		}
		if err := ctx.Err(); err != nil {
			stopPerf()
			return t.stop(), err
		}
		time.Sleep(2 * time.Millisecond)
	}
	m := t.stop()
	stopPerf()
	m.clientCPU += procCPU(p.cmd.Process.Pid)
	if d := handled(p) - int64(n); d != 0 {
		m.extra["duplicates"] = float64(d)
	}
	if err := p.stop(); err != nil {
		return m, fmt.Errorf("worker stop: %w: %s", err, p.stderrTail())
	}
	return m, nil
}

// perfRecord samples pid's CPU with perf(1) into -perf's file for this
// measurement until the returned func is called (nothing without -perf).
func (b *bench) perfRecord(pid int) func() {
	if b.o.perf == "" {
		return func() {}
	}
	file := fmt.Sprintf("%s.%s.%s.r%d.perf.data", b.o.perf, pathFile(b.id), b.queue, b.round)
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", file, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "efbench: perf:", err)
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		})
	}
}

// webhookTarget is the HTTP endpoint both webhook contenders POST to: it
// reads each body and answers 204.
type webhookTarget struct {
	srv      *http.Server
	addr     string
	received atomic.Int64
}

func newWebhookTarget() (*webhookTarget, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &webhookTarget{addr: ln.Addr().String()}
	t.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			t.received.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

func (t *webhookTarget) url() string { return "http://" + t.addr + "/hook" }

func (t *webhookTarget) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.srv.Shutdown(ctx)
}

// fillBareQueue declares a queue of the round's type and fills it with n
// messages for a bare consumer.
func (b *bench) fillBareQueue(ctx context.Context, n int) (queue string, done func(), err error) {
	exchange, queue, done, err := b.publishTarget()
	if err != nil {
		return queue, done, err
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return queue, done, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(queue, n); err != nil {
		return queue, done, fmt.Errorf("fill: %w", err)
	}
	return queue, done, nil
}

// bareLine is the line HANDLER=log writes (eventlog's output contract).
type bareLine struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id"`
	Source      string          `json:"source,omitempty"`
	Time        time.Time       `json:"time,omitzero"`
	Attempt     int             `json:"attempt"`
	Data        json.RawMessage `json:"data"`
}

// bareLogAckEvery: the bare log consumer acks (multiple) after every this
// many written lines; under the worker's default prefetch, so the broker
// never waits for an ack with the prefetch window full.
const bareLogAckEvery = 16

// runBareLog is the reference for HANDLER=log: a process (this program run
// again, bareLogArg) that consumes with cmd/worker's default prefetch in one
// goroutine, writes each delivery as the same JSON line to its stdout (a
// pipe the harness reads, as it reads the worker's) and acks after the
// write. Timed from process start to the last line, as the worker is.
func (b *bench) runBareLog(ctx context.Context, n int) (measurement, error) {
	queue, done, err := b.fillBareQueue(ctx, n)
	defer done()
	if err != nil {
		return measurement{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return measurement{}, err
	}
	cmd := exec.CommandContext(ctx, self, bareLogArg, "-url", b.o.url, "-queue", queue, "-n", strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return measurement{}, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var lines atomic.Int64
	t := b.startTimer()
	if err := cmd.Start(); err != nil {
		return t.stop(), err
	}
	buf := make([]byte, 64<<10)
	for {
		k, rerr := out.Read(buf)
		lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
		if rerr != nil {
			break
		}
	}
	err = cmd.Wait()
	m := t.stop()
	if cmd.ProcessState != nil {
		m.clientCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return m, fmt.Errorf("%s: %v: %s", bareLogArg, err, tail(stderr.String()))
	}
	if got := lines.Load(); got != int64(n) {
		return m, fmt.Errorf("%d lines for %d events", got, n)
	}
	return m, nil
}

// bareLogArg makes efbench run as the bare reference of HANDLER=log.
const bareLogArg = "bare-log-consume"

// bareLogMain is the bare log consumer's process: it consumes -n messages of
// -queue and writes their lines to stdout.
func bareLogMain(args []string) int {
	fs := flag.NewFlagSet(bareLogArg, flag.ContinueOnError)
	url := fs.String("url", "", "broker URL")
	queue := fs.String("queue", "", "queue")
	n := fs.Int("n", 0, "messages")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := bareLogConsume(context.Background(), *url, *queue, *n, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, bareLogArg+":", err)
		return 1
	}
	return 0
}

func bareLogConsume(ctx context.Context, url, queue string, n int, out io.Writer) error {
	conn, ds, err := consumeChannel(url, "efbench-bare-log", queue, amqp.DefaultPrefetch)
	if err != nil {
		return err
	}
	defer conn.Close()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := 1; i <= n; i++ {
		var d amqp091.Delivery
		select {
		case dd, ok := <-ds:
			if !ok {
				return fmt.Errorf("deliveries closed after %d of %d", i-1, n)
			}
			d = dd
		case <-ctx.Done():
			return fmt.Errorf("consumed %d of %d: %w", i-1, n, ctx.Err())
		}
		agg, _ := d.Headers[amqp.HeaderAggregateID].(string)
		buf.Reset()
		if err := enc.Encode(bareLine{ID: d.MessageId, Type: d.Type, AggregateID: agg, Source: d.AppId,
			Time: d.Timestamp.UTC(), Attempt: 1, Data: d.Body}); err != nil {
			return err
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
		if i%bareLogAckEvery == 0 || i == n {
			if err := d.Ack(true /* multiple */); err != nil {
				return err
			}
		}
	}
	return nil
}

// runBareWebhook is the reference for HANDLER=webhook: cmd/worker's default
// prefetch and concurrency (that many goroutines reading one consumer's
// deliveries), each POSTing the body with the webhook's headers to the same
// target, reading the answer and acking the delivery after a 2xx.
func (b *bench) runBareWebhook(ctx context.Context, n int) (measurement, error) {
	queue, done, err := b.fillBareQueue(ctx, n)
	defer done()
	if err != nil {
		return measurement{}, err
	}
	target, err := newWebhookTarget()
	if err != nil {
		return measurement{}, err
	}
	defer target.close()
	t := b.startTimer()
	err = bareWebhookConsume(ctx, b.o.url, queue, target.url(), n, amqp.DefaultConcurrency)
	m := t.stop()
	if err != nil {
		return m, err
	}
	if got := target.received.Load(); got != int64(n) {
		return m, fmt.Errorf("target received %d posts for %d events", got, n)
	}
	return m, nil
}

func bareWebhookConsume(ctx context.Context, url, queue, target string, n, concurrency int) error {
	conn, ds, err := consumeChannel(url, "efbench-bare-webhook", queue, amqp.DefaultPrefetch)
	if err != nil {
		return err
	}
	defer conn.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		acked   atomic.Int64
		all     = make(chan struct{})
		failed  = make(chan error, concurrency)
		workers sync.WaitGroup
	)
	for range concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for d := range ds {
				if err := postDelivery(ctx, client, target, &d); err != nil {
					failed <- err
					return
				}
				if err := d.Ack(false /* multiple */); err != nil {
					failed <- err
					return
				}
				if acked.Add(1) == int64(n) {
					close(all)
				}
			}
		}()
	}
	select {
	case <-all:
	case err = <-failed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Closing the connection ends the deliveries, and so the goroutines.
	_ = conn.Close()
	workers.Wait()
	return err
}

func postDelivery(ctx context.Context, client *http.Client, url string, d *amqp091.Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "efbench-bare")
	req.Header.Set("X-Event-Id", d.MessageId)
	req.Header.Set("X-Event-Type", d.Type)
	req.Header.Set("X-Event-Attempt", "1")
	req.Header.Set("X-Event-Source", d.AppId)
	if agg, _ := d.Headers[amqp.HeaderAggregateID].(string); agg != "" {
		req.Header.Set("X-Aggregate-Id", agg)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New("target answered " + resp.Status)
	}
	return nil
}

// runWorkerInProcess is a diagnostic for profiling (-cpuprofile): the
// worker cmd/worker builds for HANDLER=handler with its defaults (an
// amqp.Worker with metrics and an info-level JSON logger, eventlog on a pipe
// or webhook to the target), in this process.
func (b *bench) runWorkerInProcess(ctx context.Context, n int, handler string) (measurement, error) {
	exchange, app := b.name("x"), b.name("app")
	qs, xs := workerNames(exchange, app)
	b.adm.track(qs, xs)
	defer b.cleanup(qs, xs)
	cfg := amqp.WorkerConfig{
		URL:       b.o.url,
		Exchange:  exchange,
		App:       app,
		QueueType: b.queue,
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Metrics:   metrics.New(),
	}
	if err := declareWorker(ctx, cfg); err != nil {
		return measurement{}, fmt.Errorf("declare: %w", err)
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(amqp.AppQueue(app), n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	var (
		h       event.Handler
		handled func() int64
	)
	switch handler {
	case "webhook":
		target, err := newWebhookTarget()
		if err != nil {
			return measurement{}, err
		}
		defer target.close()
		wh, err := webhook.New(webhook.Config{URL: target.url(), MaxIdleConnsPerHost: max(amqp.DefaultConcurrency, webhook.DefaultMaxIdleConnsPerHost)})
		if err != nil {
			return measurement{}, err
		}
		h, handled = wh, target.received.Load
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return measurement{}, err
		}
		defer pr.Close()
		defer pw.Close()
		var lines atomic.Int64
		go func() {
			buf := make([]byte, 64<<10)
			for {
				k, err := pr.Read(buf)
				lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
				if err != nil {
					return
				}
			}
		}()
		h, handled = eventlog.New(pw), lines.Load
	}
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		return measurement{}, err
	}
	defer w.Stop(context.Background())
	deadline := time.Now().Add(b.o.timeout)
	t := b.startTimer()
	if err := w.Start(ctx); err != nil {
		return t.stop(), err
	}
	for handled() < int64(n) || w.Stats().Handled < int64(n) {
		select {
		case <-w.Done():
			return t.stop(), fmt.Errorf("worker stopped after %d of %d: %v", w.Stats().Handled, n, w.Err())
		case <-ctx.Done():
			return t.stop(), ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("handled %d of %d within %v", w.Stats().Handled, n, b.o.timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return t.stop(), nil
}
