package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// latencies collects publish→handler times in milliseconds.
type latencies struct {
	ms  []float64
	n   atomic.Int64
	bad atomic.Int64 // bodies without a readable timestamp
}

func newLatencies(n int) *latencies { return &latencies{ms: make([]float64, n)} }

func (l *latencies) record(body []byte) {
	ts, ok := bodyTime(body)
	if !ok {
		l.bad.Add(1)
		return
	}
	d := float64(time.Now().UnixNano()-ts) / 1e6
	if i := l.n.Add(1) - 1; int(i) < len(l.ms) {
		l.ms[i] = d
	}
}

func (l *latencies) count() int { return int(l.n.Load()) }

// summary puts p50, p99, p99.9 and max into m.
func (l *latencies) summary(m *measurement, rate float64) error {
	k := min(l.count(), len(l.ms))
	if l.bad.Load() > 0 {
		return fmt.Errorf("%d messages without a timestamp", l.bad.Load())
	}
	s := slices.Clone(l.ms[:k])
	slices.Sort(s)
	m.extra["offered_rate"] = rate
	m.extra["p50_ms"] = percentile(s, 50)
	m.extra["p99_ms"] = percentile(s, 99)
	m.extra["p999_ms"] = percentile(s, 99.9)
	m.extra["max_ms"] = percentile(s, 100)
	return nil
}

// pacer holds a fixed rate: message i is due at start + i/rate. A message
// carries its due time, not its send time, so a publisher that falls behind
// shows up in the latency (no coordinated omission).
type pacer struct {
	start    time.Time
	interval time.Duration
}

func newPacer(rate float64) *pacer {
	return &pacer{start: time.Now(), interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until message i is due and returns its due time.
func (p *pacer) wait(i int) time.Time {
	due := p.start.Add(time.Duration(i) * p.interval)
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
	return due
}

// runBareLatency: the bare publisher at a fixed rate into a queue the bare
// consumer drains; latency from due time to delivery. With rate 0 it
// publishes as fast as it can: the reference's end-to-end maximum.
func (b *bench) runBareLatency(ctx context.Context, n int, rate float64) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	lat := newLatencies(n)
	cctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	consuming := make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		consumed <- bareConsume(cctx, b.o.url, queue, n, b.o.prefetch, bareAckEvery,
			func(d *amqp091.Delivery) { lat.record(d.Body) }, consuming)
	}()
	select {
	case <-consuming:
	case err := <-consumed:
		return measurement{}, fmt.Errorf("consumer: %w", err)
	}
	conn, ch, err := dialChannel(b.o.url, "efbench-latency-publish")
	if err != nil {
		return measurement{}, err
	}
	defer conn.Close()
	t := b.startTimer()
	if err := b.publishPaced(cctx, ch, exchange, n, rate); err != nil {
		return t.stop(), fmt.Errorf("publish: %w", err)
	}
	if err := <-consumed; err != nil {
		return t.stop(), fmt.Errorf("consumer: %w", err)
	}
	m := t.stop()
	if rate == 0 {
		return m, nil
	}
	return m, lat.summary(&m, rate)
}

// runEventfleetLatency: the eventfleet Publisher at a fixed rate (window
// callers, each publishing its share at the due times) into an app queue an
// eventfleet Worker drains; latency from due time to the handler call.
// With rate 0 it publishes from window callers as fast as they can. With
// barePub the bare publisher feeds the Worker instead, which splits the
// end-to-end latency into the publisher's part and the worker's.
func (b *bench) runEventfleetLatency(ctx context.Context, n int, rate float64, barePub bool) (measurement, error) {
	exchange, app := b.name("x"), b.name("app")
	qs, xs := workerNames(exchange, app)
	b.adm.track(qs, xs)
	defer b.cleanup(qs, xs)
	lat := newLatencies(n)
	w, err := amqp.NewWorker(b.workerConfig(exchange, app), event.HandlerFunc(func(_ context.Context, ev event.Event) error {
		lat.record(ev.Data)
		return nil
	}))
	if err != nil {
		return measurement{}, err
	}
	if err := w.Start(ctx); err != nil {
		return measurement{}, err
	}
	defer w.Stop(context.Background())
	select {
	case <-w.Ready():
	case <-w.Done():
		return measurement{}, fmt.Errorf("worker stopped: %w", w.Err())
	case <-time.After(30 * time.Second):
		return measurement{}, errors.New("worker not consuming after 30s")
	}
	if barePub {
		return b.bareInto(ctx, exchange, n, rate, lat)
	}
	p, err := b.startPublisher(ctx, exchange)
	if err != nil {
		return measurement{}, err
	}
	defer p.Stop(context.Background())

	pctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	publish := func(ts time.Time) {
		if err := p.Publish(pctx, event.Event{Type: eventType, Data: makeBody(b.o.size, ts.UnixNano())}); err != nil {
			errMu.Lock()
			first = keepFirst(first, err)
			errMu.Unlock()
		}
	}
	t := b.startTimer()
	// As many callers as the window, as an application with that many
	// requests in flight has. Paced, caller c publishes messages c,
	// c+window, … each at its due time (a caller still waiting for an
	// earlier confirm is late, and the due-time stamp shows it); unpaced,
	// stamped at send, as fast as it goes.
	callers := b.o.window
	var pace *pacer
	if rate > 0 {
		pace = newPacer(rate)
	}
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n && pctx.Err() == nil; i += callers {
				if pace != nil {
					publish(pace.wait(i))
				} else {
					publish(time.Now())
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return t.stop(), fmt.Errorf("publish: %w", first)
	}
	return lat.await(pctx, t, n, rate)
}

// bareInto publishes n messages with the bare publisher at rate into
// exchange and waits until lat has recorded them all.
func (b *bench) bareInto(ctx context.Context, exchange string, n int, rate float64, lat *latencies) (measurement, error) {
	conn, ch, err := dialChannel(b.o.url, "efbench-latency-bare-into")
	if err != nil {
		return measurement{}, err
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	t := b.startTimer()
	if err := b.publishPaced(pctx, ch, exchange, n, rate); err != nil {
		return t.stop(), fmt.Errorf("publish: %w", err)
	}
	return lat.await(pctx, t, n, rate)
}

// await waits until n latencies are recorded, stops t and summarizes.
func (l *latencies) await(ctx context.Context, t *timer, n int, rate float64) (measurement, error) {
	for l.count() < n {
		if err := ctx.Err(); err != nil {
			return t.stop(), fmt.Errorf("handled %d of %d: %w", l.count(), n, err)
		}
		time.Sleep(time.Millisecond)
	}
	m := t.stop()
	if rate == 0 {
		return m, nil
	}
	return m, l.summary(&m, rate)
}

// publishPaced publishes n messages on ch with the bare publisher, each body
// stamped with its due time at rate; unpaced (rate 0), as fast as it goes,
// stamped at send.
func (b *bench) publishPaced(ctx context.Context, ch *amqp091.Channel, exchange string, n int, rate float64) error {
	due := func(int) time.Time { return time.Now() }
	if rate > 0 {
		due = newPacer(rate).wait
	}
	var ts time.Time
	return barePublish(ctx, ch, exchange, eventType, n, b.o.window, func(i int) amqp091.Publishing {
		return benchMessage(makeBody(b.o.size, ts.UnixNano()))
	}, func(i int) { ts = due(i) })
}
