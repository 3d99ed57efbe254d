package amqp_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Benchmarks compare eventfleet with a bare amqp091-go loop on the same broker,
// 512-byte persistent messages into one durable quorum queue. Run them with
//
//	AMQP_URL=amqp://guest:guest@localhost:5672/ go test -run '^$' -bench . -benchtime 20000x -count 3 ./amqp/
//
// and compare msgs/s within one run (the machine is noisy), and the client's
// cost per message (cpu-µs/msg, writes/msg), which is steadier.
// docs/benchmarks.md has the figures; bench/ (make bench) is the full harness.

var body512 = []byte(`{"payload":"` + strings.Repeat("x", 512-14) + `"}`)

// benchQueue declares a quorum queue bound to a fresh exchange with "#".
func benchQueue(b *testing.B) (exchange, queue string) {
	b.Helper()
	exchange, queue = brokertest.Name(b), brokertest.Name(b)+"-q"
	ch := brokertest.Channel(b)
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-queue-type": "quorum"}); err != nil {
		b.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false, nil); err != nil {
		b.Fatal(err)
	}
	brokertest.Cleanup(b, []string{queue, amqp.UnroutedQueue(exchange)}, []string{exchange})
	return exchange, queue
}

// barePublish is the reference: one channel, a sliding window of outstanding
// confirms, no per-message bookkeeping beyond the client's own.
func barePublish(b *testing.B, exchange string, n, window int) {
	b.Helper()
	ch := brokertest.Channel(b)
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window+1))
	outstanding := 0
	for i := 0; i < n; i++ {
		for outstanding >= window {
			if c := <-confirms; !c.Ack {
				b.Fatal("nack")
			}
			outstanding--
		}
		err := ch.Publish(exchange, "BenchEvent", true, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, ContentType: "application/json", Type: "BenchEvent",
			MessageId: fmt.Sprint(i), Body: body512,
		})
		if err != nil {
			b.Fatal(err)
		}
		outstanding++
	}
	for ; outstanding > 0; outstanding-- {
		if c := <-confirms; !c.Ack {
			b.Fatal("nack")
		}
	}
}

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// costs notes this process's CPU time and write(2) calls; the function it
// returns reports both per message since then. Throughput on a shared
// 2-core machine is noisy; what the client spends per message is steadier,
// and the broker on the same cores runs short of what the client takes.
func costs(b *testing.B) (report func(n int)) {
	cpu0, w0 := cpuMicros(), writeCalls()
	return func(n int) {
		b.ReportMetric((cpuMicros()-cpu0)/float64(n), "cpu-µs/msg")
		if w0 >= 0 {
			b.ReportMetric((writeCalls()-w0)/float64(n), "writes/msg")
		}
	}
}

func cpuMicros() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// writeCalls is the process's count of write system calls (Linux), or -1.
func writeCalls() float64 {
	bs, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for l := range strings.Lines(string(bs)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "syscw: "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

func BenchmarkPublish(b *testing.B) {
	const window = 256
	b.Run("bare-window256", func(b *testing.B) {
		exchange, _ := benchQueue(b)
		b.ResetTimer()
		report := costs(b)
		barePublish(b, exchange, b.N, window)
		reportRate(b, b.N)
		report(b.N)
	})
	for _, callers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("eventfleet-%dcallers", callers), func(b *testing.B) {
			exchange, _ := benchQueue(b)
			p := benchPublisher(b, exchange, window)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			report := costs(b)
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := c; i < b.N; i += callers {
						if err := p.Publish(ctx, event.Event{ID: fmt.Sprint(i), Type: "BenchEvent", Data: body512}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			reportRate(b, b.N)
			report(b.N)
		})
	}
	b.Run("eventfleet-batch1000", func(b *testing.B) {
		exchange, _ := benchQueue(b)
		p := benchPublisher(b, exchange, window)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		report := costs(b)
		for start := 0; start < b.N; start += 1000 {
			evs := make([]event.Event, min(1000, b.N-start))
			for i := range evs {
				evs[i] = event.Event{ID: fmt.Sprint(start + i), Type: "BenchEvent", Data: body512}
			}
			if err := p.PublishBatch(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N)
		report(b.N)
	})
}

func benchPublisher(b *testing.B, exchange string, window int) *amqp.Publisher {
	b.Helper()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(b), Exchange: exchange, Window: window, Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Stop(context.Background()) })
	select {
	case <-p.Ready():
	case <-time.After(10 * time.Second):
		b.Fatal("publisher not connected")
	}
	return p
}

func BenchmarkConsume(b *testing.B) {
	b.Run("bare-prefetch256-multiack", func(b *testing.B) {
		exchange, queue := benchQueue(b)
		barePublish(b, exchange, b.N, 256)
		ch := brokertest.Channel(b)
		if err := ch.Qos(256, 0, false); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		report := costs(b)
		ds, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= b.N; i++ {
			d := <-ds
			if i%64 == 0 || i == b.N {
				if err := d.Ack(true); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRate(b, b.N)
		report(b.N)
	})
	b.Run("eventfleet-worker-noop", func(b *testing.B) {
		exchange := brokertest.Name(b)
		app := brokertest.Name(b)
		q := amqp.AppQueue(app)
		brokertest.Cleanup(b, []string{q, q + ".dead", amqp.UnroutedQueue(exchange)}, []string{exchange, amqp.HopsExchange(q)})
		// A first worker declares the topology; stop it, fill the queue,
		// then time a fresh worker draining it.
		cfg := amqp.WorkerConfig{URL: brokertest.URL(b), Exchange: exchange, App: app, Prefetch: 256, Logger: testLogger(b),
			Retry: fast}
		for _, d := range fast.Stages() {
			brokertest.Cleanup(b, []string{amqp.RetryQueue(q, d)}, nil)
		}
		noop := event.HandlerFunc(func(context.Context, event.Event) error { return nil })
		w, err := amqp.NewWorker(cfg, noop)
		if err != nil {
			b.Fatal(err)
		}
		_ = w.Start(context.Background())
		<-w.Ready()
		_ = w.Stop(context.Background())
		barePublish(b, exchange, b.N, 256)
		w, _ = amqp.NewWorker(cfg, noop)
		b.ReportAllocs()
		b.ResetTimer()
		report := costs(b)
		_ = w.Start(context.Background())
		for w.Stats().Handled < int64(b.N) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		reportRate(b, b.N)
		report(b.N)
		_ = w.Stop(context.Background())
	})
}
