package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
)

// buildBinaries builds cmd/publisher and cmd/worker of the working tree.
func (b *bench) buildBinaries(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.tmp+"/", "./cmd/publisher", "./cmd/worker")
	cmd.Dir = b.o.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/publisher ./cmd/worker in %s: %w", b.o.root, err)
	}
	b.bins.publisher = b.tmp + "/publisher"
	b.bins.worker = b.tmp + "/worker"
	return nil
}

// workerProc is a running cmd/worker. HANDLER=log prints one line per
// handled event on stdout; the harness counts the lines and drops them.
type workerProc struct {
	cmd       *exec.Cmd
	started   time.Time
	lines     atomic.Int64
	consuming chan struct{} // closed at the "consuming" log line
	at        atomic.Int64  // when consuming was logged, Unix ns
	exited    chan struct{}
	exitErr   error
	stderrMu  sync.Mutex
	stderr    []string // last lines
}

// harnessWorkerEnv is cmd/worker's environment in the consume and
// scale-out rows: HANDLER=log with the harness's prefetch and concurrency.
func (b *bench) harnessWorkerEnv(exchange, app string) []string {
	return []string{
		"AMQP_URL=" + b.o.url,
		"EXCHANGE=" + exchange,
		"APP_NAME=" + app,
		"QUEUE_TYPE=" + b.queue,
		fmt.Sprintf("WORKER_PREFETCH=%d", b.o.prefetch),
		fmt.Sprintf("WORKER_CONCURRENCY=%d", b.o.concurrency),
		"HANDLER=log",
		"LOG_LEVEL=info",
		"SHUTDOWN_TIMEOUT=10s",
		// Scale-out runs several workers on this machine: each takes a
		// free port for its /metrics (served, so its cost is measured).
		"METRICS_ADDR=127.0.0.1:0",
	}
}

// defaultWorkerEnv is cmd/worker's environment in the paths rows: every
// setting at its default but where to connect, the queue type of the round,
// the handler and its target, and a free port for /metrics (several
// processes share this host).
func (b *bench) defaultWorkerEnv(exchange, app, handler, webhookURL string) []string {
	env := []string{
		"AMQP_URL=" + b.o.url,
		"EXCHANGE=" + exchange,
		"APP_NAME=" + app,
		"QUEUE_TYPE=" + b.queue,
		"HANDLER=" + handler,
		"METRICS_ADDR=127.0.0.1:0",
	}
	if webhookURL != "" {
		env = append(env, "WEBHOOK_URL="+webhookURL)
	}
	return append(env, b.o.binEnv...)
}

// startWorker starts cmd/worker for app on exchange with the harness's
// settings.
func (b *bench) startWorker(ctx context.Context, exchange, app string) (*workerProc, error) {
	return b.startWorkerEnv(ctx, b.harnessWorkerEnv(exchange, app))
}

// startWorkerEnv starts cmd/worker with env on top of this process's.
func (b *bench) startWorkerEnv(ctx context.Context, env []string) (*workerProc, error) {
	cmd := exec.CommandContext(ctx, b.bins.worker)
	cmd.Env = append(os.Environ(), env...)
	// A hard stop by the harness's context sends SIGTERM first.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &workerProc{cmd: cmd, consuming: make(chan struct{}), exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		buf := make([]byte, 64<<10)
		for {
			k, err := stdout.Read(buf)
			p.lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			if !seen && strings.Contains(line, `"msg":"consuming"`) {
				seen = true
				p.at.Store(time.Now().UnixNano())
				close(p.consuming)
			}
			p.stderrMu.Lock()
			p.stderr = append(p.stderr, line)
			if len(p.stderr) > 20 {
				p.stderr = p.stderr[1:]
			}
			p.stderrMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		readers.Wait()
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *workerProc) stderrTail() string {
	p.stderrMu.Lock()
	defer p.stderrMu.Unlock()
	return tail(strings.Join(p.stderr, "\n"))
}

// waitConsuming waits for the "consuming" log line and returns the time
// from process start to it.
func (p *workerProc) waitConsuming(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	select {
	case <-p.consuming:
		return time.Duration(p.at.Load() - p.started.UnixNano()), nil
	case <-p.exited:
		return 0, fmt.Errorf("worker exited before consuming (%v): %s", p.exitErr, p.stderrTail())
	case <-time.After(timeout):
		return 0, fmt.Errorf("worker not consuming after %v: %s", timeout, p.stderrTail())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 15s).
func (p *workerProc) stop() error {
	select {
	case <-p.exited:
		return p.exitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("worker did not stop within 15s of SIGTERM; killed")
	}
}

// declareWorkerProc runs cmd/worker until it consumes (it declares the
// topology), then stops it. With idle set it also waits idle and returns the
// process's RSS then; it always returns the time from start to consuming.
func (b *bench) declareWorkerProc(ctx context.Context, env []string, idle time.Duration) (startup time.Duration, rss int64, err error) {
	p, err := b.startWorkerEnv(ctx, env)
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	startup, err = p.waitConsuming(ctx, 30*time.Second)
	if err != nil {
		return 0, 0, err
	}
	if idle > 0 {
		select {
		case <-time.After(idle):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		rss, _ = procMem(p.cmd.Process.Pid)
	}
	return startup, rss, p.stop()
}

// runWorkerProcs fills an app's queue with n messages, starts procs
// cmd/worker processes at once and times them from start until the queue is
// empty (passive declare: no message ready) and they have printed n events.
// With one process it also reports its memory and start-up time.
func (b *bench) runWorkerProcs(ctx context.Context, n, procs int) (measurement, error) {
	exchange, app := b.name("x"), b.name("app")
	qs, xs := workerNames(exchange, app)
	b.adm.track(qs, xs)
	defer b.cleanup(qs, xs)
	queue := amqp.AppQueue(app)

	idle := time.Duration(0)
	if procs == 1 {
		idle = b.o.idle
	}
	freshStartup, idleRSS, err := b.declareWorkerProc(ctx, b.harnessWorkerEnv(exchange, app), idle)
	if err != nil {
		return measurement{}, fmt.Errorf("declare: %w", err)
	}
	if err := fill(ctx, b.o.url, exchange, eventType, n, b.o.window, makeBody(b.o.size, 0)); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}
	if err := b.verify(queue, n); err != nil {
		return measurement{}, fmt.Errorf("fill: %w", err)
	}

	var ps []*workerProc
	defer func() {
		for _, p := range ps {
			_ = p.stop()
		}
	}()
	deadline := time.Now().Add(b.o.timeout)
	var peakRSS int64
	t := b.startTimer()
	for range procs {
		p, err := b.startWorker(ctx, exchange, app)
		if err != nil {
			return t.stop(), err
		}
		ps = append(ps, p)
	}
	var handled int64
	for tick := 0; ; tick++ {
		handled = 0
		for _, p := range ps {
			handled += p.lines.Load()
			select {
			case <-p.exited:
				return t.stop(), fmt.Errorf("worker exited after %d of %d events (%v): %s", handled, n, p.exitErr, p.stderrTail())
			default:
			}
		}
		if procs == 1 && tick%10 == 0 {
			rss, _ := procMem(ps[0].cmd.Process.Pid)
			peakRSS = max(peakRSS, rss)
		}
		if handled >= int64(n) {
			if ready, err := b.adm.ready(queue); err != nil {
				return t.stop(), err
			} else if ready == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("%d of %d events handled within %v", handled, n, b.o.timeout)
		}
		if err := ctx.Err(); err != nil {
			return t.stop(), err
		}
		time.Sleep(2 * time.Millisecond)
	}
	m := t.stop()
	for _, p := range ps {
		m.clientCPU += procCPU(p.cmd.Process.Pid)
	}
	if handled != int64(n) {
		m.extra["duplicates"] = float64(handled - int64(n))
	}
	if procs == 1 {
		p := ps[0]
		rss, hwm := procMem(p.cmd.Process.Pid)
		peakRSS = max(peakRSS, rss)
		consumingAt := time.Unix(0, p.at.Load())
		m.extra["startup_ms"] = float64(consumingAt.Sub(p.started).Microseconds()) / 1000
		m.extra["startup_fresh_ms"] = float64(freshStartup.Microseconds()) / 1000
		m.extra["rss_idle_mib"] = mib(idleRSS)
		m.extra["rss_load_mib"] = mib(peakRSS)
		m.extra["rss_hwm_mib"] = mib(hwm)
		if d := t.began.Add(m.elapsed).Sub(consumingAt); d > 0 {
			m.extra["rate_from_consuming"] = float64(n) / d.Seconds()
		}
	}
	return m, nil
}
