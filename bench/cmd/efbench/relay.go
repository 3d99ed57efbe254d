package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/internal/pgdsn"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/outbox"
)

// relayAggregates is how many aggregates the relay rows spread over: a
// scan's rows are then of different aggregates and go in one wave, as in an
// app with many aggregates (one aggregate's rows go one confirm apart).
const relayAggregates = 1000

// relayDB creates a database with the eventfleet outbox on the -pg server
// and returns its connection string (the form of -pg: URL or key=value DSN)
// and a func that drops it.
func (b *bench) relayDB(ctx context.Context) (string, func(), error) {
	buf := make([]byte, 4)
	_, _ = rand.Read(buf)
	name := "efbench_relay_" + hex.EncodeToString(buf)
	dsn, err := pgdsn.WithDatabase(b.o.pg, name)
	if err != nil {
		return "", func() {}, fmt.Errorf("-pg: %w", err)
	}
	admin, err := pgx.Connect(ctx, b.o.pg)
	if err != nil {
		return "", func() {}, fmt.Errorf("-pg: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", func() {}, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), b.o.pg)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", drop, err
	}
	defer conn.Close(ctx)
	return dsn, drop, outbox.Migrate(ctx, conn, outbox.DefaultTable, outbox.FormatEventfleet)
}

// relayWorld is a fresh exchange and queue, and a database with the outbox.
type relayWorld struct {
	exchange, queue, db string
	conn                *pgx.Conn
	closers             []func()
}

func (w *relayWorld) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

func (b *bench) relayWorld(ctx context.Context) (*relayWorld, error) {
	w := &relayWorld{}
	exchange, queue, done, err := b.publishTarget()
	w.exchange, w.queue, w.closers = exchange, queue, append(w.closers, done)
	if err != nil {
		return w, err
	}
	db, drop, err := b.relayDB(ctx)
	w.db, w.closers = db, append(w.closers, drop)
	if err != nil {
		return w, err
	}
	if w.conn, err = pgx.Connect(ctx, db); err != nil {
		return w, err
	}
	w.closers = append(w.closers, func() { _ = w.conn.Close(context.Background()) })
	return w, nil
}

// relayCmd is `publisher relay` with its defaults on exchange, plus env
// (the source's settings) and -bin-env.
func (b *bench) relayCmd(ctx context.Context, exchange string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.bins.publisher, "relay")
	cmd.Env = append(os.Environ(), "AMQP_URL="+b.o.url, "EXCHANGE="+exchange, "APP_NAME=efbench", "LOG_LEVEL=warn")
	cmd.Env = append(append(cmd.Env, env...), b.o.binEnv...)
	return cmd
}

// timeRelay times cmd, a relay over a source filled beforehand, from its
// start until done reports every message settled at the source; done is
// asked every 20 ms (cheaply: the machine charges its work to the relay)
// and says, when not done, how far the relay got, for the timeout's error.
func (b *bench) timeRelay(cmd *exec.Cmd, done func() (bool, string, error)) (measurement, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t := b.startTimer()
	if err := cmd.Start(); err != nil {
		return t.stop(), err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(b.o.timeout)
	for {
		ok, progress, err := done()
		if err != nil {
			return t.stop(), err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("%s after %v: %s", progress, b.o.timeout, tail(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := t.stop()
	m.clientCPU += procCPU(cmd.Process.Pid)
	return m, nil
}

// runRelayBinary fills an outbox with n committed rows (the bench body,
// relayAggregates aggregates), then times `publisher relay` from its start
// until every row is settled, and checks the queue holds each one.
func (b *bench) runRelayBinary(ctx context.Context, n int) (measurement, error) {
	w, err := b.relayWorld(ctx)
	defer w.close()
	if err != nil {
		return measurement{}, err
	}
	exchange, queue, db, conn := w.exchange, w.queue, w.db, w.conn
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data)
		SELECT gen_random_uuid()::text, 'agg-' || (i % $2), $3, $4::json FROM generate_series(1, $1) i`,
		n, relayAggregates, eventType, string(makeBody(b.o.size, 0))); err != nil {
		return measurement{}, fmt.Errorf("fill the outbox: %w", err)
	}
	m, err := b.timeRelay(b.relayCmd(ctx, exchange, "DATABASE_URL="+db, "METRICS_ADDR=off"), func() (bool, string, error) {
		// EXISTS: a count would scan the table each time.
		var left int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM eventfleet_outbox LIMIT 1) r").Scan(&left)
		return left == 0, "rows left in the outbox", err
	})
	if err != nil {
		return m, err
	}
	return m, b.verify(queue, n)
}

// relayLatencyRate is the commit rate of the relay latency rows: a steady
// app, far under the relay's throughput, so the figure is the path's delay,
// not a queue's.
const relayLatencyRate = 200.0

// runRelayLatency: an app commits one outbox row every 1/relayLatencyRate s
// (its body carries the commit's due time), `publisher relay` publishes
// them, a bare consumer takes them; latency from the due time to delivery.
// With notify the insert trigger wakes the relay; without it the relay
// finds rows by polling (OUTBOX_POLL_INTERVAL, 1 s by default).
func (b *bench) runRelayLatency(ctx context.Context, n int, notify bool) (measurement, error) {
	w, err := b.relayWorld(ctx)
	defer w.close()
	if err != nil {
		return measurement{}, err
	}
	exchange, queue, db, conn := w.exchange, w.queue, w.db, w.conn
	if !notify {
		if _, err := conn.Exec(ctx, "DROP TRIGGER eventfleet_outbox_notify ON eventfleet_outbox"); err != nil {
			return measurement{}, err
		}
	}
	cmd := b.relayCmd(ctx, exchange, "DATABASE_URL="+db, "METRICS_ADDR=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	lat := newLatencies(n)
	cctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	consuming := make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		consumed <- bareConsume(cctx, b.o.url, queue, n, b.o.prefetch, 1,
			func(d *amqp091.Delivery) { lat.record(d.Body) }, consuming)
	}()
	select {
	case <-consuming:
	case err := <-consumed:
		return measurement{}, fmt.Errorf("consumer: %w", err)
	}
	// The relay's first scan after its start, before the clock runs.
	time.Sleep(time.Second) // startup: not part of the path measured
	t := b.startTimer()
	p := newPacer(relayLatencyRate)
	for i := range n {
		due := p.wait(i)
		if _, err := conn.Exec(cctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data) VALUES (gen_random_uuid()::text, $1, $2, $3::json)`,
			fmt.Sprintf("agg-%d", i%relayAggregates), eventType, string(makeBody(b.o.size, due.UnixNano()))); err != nil {
			return t.stop(), fmt.Errorf("commit row %d: %w", i, err)
		}
	}
	if err := <-consumed; err != nil {
		return t.stop(), fmt.Errorf("consumer: %w: %s", err, tail(stderr.String()))
	}
	m := t.stop()
	return m, lat.summary(&m, relayLatencyRate)
}

// runRelayInProcess is a diagnostic for profiling (-cpuprofile): the
// relay `publisher relay` builds, in process, timed from New to every row
// settled (no process start).
func (b *bench) runRelayInProcess(ctx context.Context, n int) (measurement, error) {
	w, err := b.relayWorld(ctx)
	defer w.close()
	if err != nil {
		return measurement{}, err
	}
	if _, err := w.conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data)
		SELECT gen_random_uuid()::text, 'agg-' || (i % $2), $3, $4::json FROM generate_series(1, $1) i`,
		n, relayAggregates, eventType, string(makeBody(b.o.size, 0))); err != nil {
		return measurement{}, fmt.Errorf("fill the outbox: %w", err)
	}
	env := map[string]string{"AMQP_URL": b.o.url, "EXCHANGE": w.exchange, "APP_NAME": "efbench", "DATABASE_URL": w.db,
		"METRICS_ADDR": "off", "LOG_LEVEL": "warn"}
	cfg, err := config.LoadRelay(env)
	if err != nil {
		return measurement{}, err
	}
	log := cfg.Logger(io.Discard)
	m := metrics.New()
	t := b.startTimer()
	p, err := amqp.NewPublisher(cfg.PublisherConfig(log, m))
	if err != nil {
		return t.stop(), err
	}
	if err := p.Start(ctx); err != nil {
		return t.stop(), err
	}
	defer func() { _ = p.Stop(context.Background()) }()
	ocfg := cfg.OutboxConfig()
	ocfg.Logger, ocfg.Metrics = log, m
	r, err := outbox.New(ocfg, p)
	if err != nil {
		return t.stop(), err
	}
	if err := r.Start(ctx); err != nil {
		return t.stop(), err
	}
	defer func() { _ = r.Stop(context.Background()) }()
	deadline := time.Now().Add(b.o.timeout)
	for r.Stats().Published < int64(n) {
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("%d of %d rows published after %v", r.Stats().Published, n, b.o.timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return t.stop(), b.verify(w.queue, n)
}
