package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// publishTarget declares a fresh topic exchange with a durable queue of the
// round's type bound with "#". done deletes them.
func (b *bench) publishTarget() (exchange, queue string, done func(), err error) {
	exchange, queue = b.name("x"), b.name("q")
	done = func() { b.cleanup([]string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange}) }
	b.adm.track([]string{amqp.UnroutedQueue(exchange)}, nil)
	if err = b.adm.declareExchange(exchange); err == nil {
		err = b.adm.declareQueue(queue, b.queue, exchange, nil)
	}
	return exchange, queue, done, err
}

// verify checks that queue holds exactly n messages: every confirmed
// publish arrived, and nothing twice.
func (b *bench) verify(queue string, n int) error {
	got, err := b.adm.waitReady(queue, n, 5*time.Second)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("queue %s holds %d messages, %d were confirmed", queue, got, n)
	}
	return nil
}

func (b *bench) runBarePublish(ctx context.Context, n, window, batch int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	conn, ch, err := dialChannel(b.o.url, "efbench-bare-publish")
	if err != nil {
		return measurement{}, err
	}
	defer conn.Close()
	body := makeBody(b.o.size, 0)
	t := b.startTimer()
	err = barePublishBatches(ctx, ch, exchange, eventType, n, window, batch, func(i int) amqp091.Publishing {
		return benchMessage(body)
	}, nil)
	m := t.stop()
	if err != nil {
		return m, err
	}
	return m, b.verify(queue, n)
}

// startPublisher starts an eventfleet Publisher on exchange and waits until
// it is connected.
func (b *bench) startPublisher(ctx context.Context, exchange string) (*amqp.Publisher, error) {
	p, err := amqp.NewPublisher(amqp.PublisherConfig{
		URL:      b.o.url,
		Exchange: exchange,
		AppID:    "efbench",
		Window:   b.o.window,
		Logger:   discardLogger,
	})
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	select {
	case <-p.Ready():
		return p, nil
	case <-p.Done():
		return nil, fmt.Errorf("publisher stopped: %w", p.Err())
	case <-time.After(15 * time.Second):
		_ = p.Stop(context.Background())
		return nil, errors.New("publisher not connected after 15s")
	}
}

// runEventfleetPublish publishes n events from callers goroutines, each
// calling Publish (which returns once the broker confirmed). Events have no
// ID, so the Publisher makes a UUIDv7 as it does for most callers.
func (b *bench) runEventfleetPublish(ctx context.Context, n, callers int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	p, err := b.startPublisher(ctx, exchange)
	if err != nil {
		return measurement{}, err
	}
	defer p.Stop(context.Background())
	body := makeBody(b.o.size, 0)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	t := b.startTimer()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += callers {
				if err := p.Publish(ctx, event.Event{Type: eventType, Data: body}); err != nil {
					errMu.Lock()
					first = keepFirst(first, err)
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	m := t.stop()
	if first != nil {
		return m, first
	}
	return m, b.verify(queue, n)
}

// runEventfleetBatch publishes n events with PublishBatch, batch at a time,
// from one goroutine.
func (b *bench) runEventfleetBatch(ctx context.Context, n, batch int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	p, err := b.startPublisher(ctx, exchange)
	if err != nil {
		return measurement{}, err
	}
	defer p.Stop(context.Background())
	body := makeBody(b.o.size, 0)
	t := b.startTimer()
	for start := 0; start < n; start += batch {
		evs := make([]event.Event, min(batch, n-start))
		for i := range evs {
			evs[i] = event.Event{Type: eventType, Data: body}
		}
		if err := p.PublishBatch(ctx, evs); err != nil {
			return t.stop(), err
		}
	}
	m := t.stop()
	return m, b.verify(queue, n)
}

// eventsFile writes (once) an NDJSON file of n events for `publisher publish`.
func (b *bench) eventsFile(n int) (string, error) {
	path := filepath.Join(b.tmp, fmt.Sprintf("events-%d-%d.ndjson", n, b.o.size))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	line := fmt.Sprintf(`{"type":%q,"data":%s}`+"\n", eventType, makeBody(b.o.size, 0))
	for range n {
		w.WriteString(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// runPublisherBinary times `publisher publish --file F` from process start
// to exit: process start, connect and declare included.
func (b *bench) runPublisherBinary(ctx context.Context, n int) (measurement, error) {
	return b.runFileProcess(ctx, n, "publisher publish", fmt.Sprintf("published=%d failed=0", n),
		func(file, exchange string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, b.bins.publisher, "publish", "--file", file)
			cmd.Env = append(os.Environ(), "AMQP_URL="+b.o.url, "EXCHANGE="+exchange, "APP_NAME=efbench",
				fmt.Sprintf("PUBLISH_WINDOW=%d", b.o.window), "LOG_LEVEL=warn")
			return cmd
		})
}

// runPublisherBinaryDefaults is runPublisherBinary with the binary's
// defaults (only where to publish is set).
func (b *bench) runPublisherBinaryDefaults(ctx context.Context, n int) (measurement, error) {
	return b.runFileProcess(ctx, n, "publisher publish", fmt.Sprintf("published=%d failed=0", n),
		func(file, exchange string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, b.bins.publisher, "publish", "--file", file)
			cmd.Env = append(os.Environ(), "AMQP_URL="+b.o.url, "EXCHANGE="+exchange, "APP_NAME=efbench")
			return cmd
		})
}

// runBareCLI times the bare reference of `publisher publish --file`: this
// program re-run as a process that reads and publishes the same file with
// amqp091-go alone (see barecli.go).
func (b *bench) runBareCLI(ctx context.Context, n int) (measurement, error) {
	self, err := os.Executable()
	if err != nil {
		return measurement{}, err
	}
	return b.runFileProcess(ctx, n, bareCLIArg, fmt.Sprintf("published=%d", n),
		func(file, exchange string) *exec.Cmd {
			return exec.CommandContext(ctx, self, bareCLIArg, "-url", b.o.url, "-exchange", exchange,
				"-file", file, "-window", "256")
		})
}

// runFileProcess times a process that publishes the events file to a fresh
// exchange, from its start to its exit, and checks what it printed and that
// the queue holds every event.
func (b *bench) runFileProcess(ctx context.Context, n int, what, want string, command func(file, exchange string) *exec.Cmd) (measurement, error) {
	file, err := b.eventsFile(n)
	if err != nil {
		return measurement{}, err
	}
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	cmd := command(file, exchange)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t := b.startTimer()
	err = cmd.Start()
	if err == nil {
		stopPerf := b.perfRecord(cmd.Process.Pid)
		err = cmd.Wait()
		stopPerf()
	}
	m := t.stop()
	if cmd.ProcessState != nil {
		m.clientCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return m, fmt.Errorf("%s: %v: %s", what, err, tail(stderr.String()))
	}
	if !strings.Contains(stdout.String(), want) {
		return m, fmt.Errorf("%s printed %q, want %q", what, strings.TrimSpace(stdout.String()), want)
	}
	return m, b.verify(queue, n)
}

// wmConfig is watermill-amqp's durable-queue preset with publisher confirms
// on; tuned adds a pool of 16 publishing channels and prefetch 256.
func (b *bench) wmConfig(tuned bool) wmamqp.Config {
	cfg := wmamqp.NewDurableQueueConfig(b.o.url)
	cfg.Publish.ConfirmDelivery = true
	if b.queue == amqp.QueueQuorum {
		cfg.Queue.Arguments = amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	}
	if tuned {
		cfg.Publish.ChannelPoolSize = wmTunedGoroutines
		cfg.Consume.Qos.PrefetchCount = b.o.prefetch
	}
	return cfg
}

// wmTunedGoroutines publish at once in the tuned watermill variant.
const wmTunedGoroutines = 16

// wmQueue declares the queue watermill's preset uses for a topic (named
// after it, durable, only the queue type as argument), so that publishes
// before any subscriber are kept.
func (b *bench) wmQueue() (topic string, done func(), err error) {
	topic = b.name("wm")
	done = func() { b.cleanup([]string{topic}, nil) }
	qt := ""
	if b.queue == amqp.QueueQuorum {
		qt = amqp.QueueQuorum
	}
	return topic, done, b.adm.declareQueue(topic, qt, "", nil)
}

// runWatermillPublish publishes n messages through watermill-amqp with
// confirms, from goroutines concurrent callers of Publish.
func (b *bench) runWatermillPublish(ctx context.Context, n int, tuned bool) (measurement, error) {
	topic, done, err := b.wmQueue()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	pub, err := wmamqp.NewPublisher(b.wmConfig(tuned), watermill.NopLogger{})
	if err != nil {
		return measurement{}, err
	}
	defer pub.Close()
	goroutines := 1
	if tuned {
		goroutines = wmTunedGoroutines
	}
	body := makeBody(b.o.size, 0)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	t := b.startTimer()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += goroutines {
				if ctx.Err() != nil {
					return
				}
				if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), body)); err != nil {
					errMu.Lock()
					first = keepFirst(first, err)
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	m := t.stop()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return m, first
	}
	return m, b.verify(topic, n)
}

// keepFirst keeps the first error.
func keepFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// tail is the end of a process's stderr, for error messages.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}
