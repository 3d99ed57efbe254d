package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/outbox"
)

// relayAggregates is how many aggregates the relay rows spread over: a
// scan's rows are then of different aggregates and go in one wave, as in an
// app with many aggregates (one aggregate's rows go one confirm apart).
const relayAggregates = 1000

// relayDB creates a database with the eventfleet outbox on the -pg server
// and returns its URL and a func that drops it.
func (b *bench) relayDB(ctx context.Context) (string, func(), error) {
	buf := make([]byte, 4)
	_, _ = rand.Read(buf)
	name := "efbench_relay_" + hex.EncodeToString(buf)
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
	u, err := url.Parse(b.o.pg)
	if err != nil {
		return "", drop, err
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return "", drop, err
	}
	defer conn.Close(ctx)
	return u.String(), drop, outbox.Migrate(ctx, conn, outbox.DefaultTable, outbox.FormatEventfleet)
}

// runRelayBinary fills an outbox with n committed rows (the bench body,
// relayAggregates aggregates), then times `publisher relay` from its start
// until every row is settled, and checks the queue holds each one.
func (b *bench) runRelayBinary(ctx context.Context, n int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	db, drop, err := b.relayDB(ctx)
	defer drop()
	if err != nil {
		return measurement{}, err
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return measurement{}, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO eventfleet_outbox (id, aggregate_id, type, data)
		SELECT gen_random_uuid()::text, 'agg-' || (i % $2), $3, $4::json FROM generate_series(1, $1) i`,
		n, relayAggregates, eventType, string(makeBody(b.o.size, 0))); err != nil {
		return measurement{}, fmt.Errorf("fill the outbox: %w", err)
	}
	cmd := exec.CommandContext(ctx, b.bins.publisher, "relay")
	cmd.Env = append(os.Environ(), "AMQP_URL="+b.o.url, "EXCHANGE="+exchange, "APP_NAME=efbench", "DATABASE_URL="+db,
		"METRICS_ADDR=off", "LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, b.o.binEnv...)
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
		var left int
		// EXISTS, every 20 ms: a count would scan the table each time, work
		// the machine would charge to the relay.
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM eventfleet_outbox LIMIT 1) r").Scan(&left); err != nil {
			return t.stop(), err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return t.stop(), fmt.Errorf("%d of %d rows left after %v: %s", left, n, b.o.timeout, tail(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := t.stop()
	m.clientCPU += procCPU(cmd.Process.Pid)
	return m, b.verify(queue, n)
}
