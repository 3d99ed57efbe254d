package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The relay's Redis sources (RELAY_SOURCE=redis-stream and redis) against
// the bare publish limit (bare-relay). Bodies are the original design's,
// {"aggregateId":"agg-<i mod relayAggregates>", …the bench body…}, so that
// the relay spreads them over aggregates as bin-relay's rows.

// redisBody is makeBody with an aggregateId in front.
func redisBody(size, i int) []byte {
	body := makeBody(size, 0)
	return append([]byte(`{"aggregateId":"agg-`+strconv.Itoa(i%relayAggregates)+`",`), body[1:]...)
}

// redisClient is a client of -redis.
func (b *bench) redisClient(ctx context.Context) (*redis.Client, error) {
	opt, err := redis.ParseURL(b.o.redis)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("-redis: %w", err)
	}
	return c, nil
}

// redisRelayCmd is `publisher relay` with RELAY_SOURCE=source on exchange,
// its other settings the defaults but for extra.
func (b *bench) redisRelayCmd(ctx context.Context, exchange, source string, extra ...string) *exec.Cmd {
	return b.relayCmd(ctx, exchange, append([]string{"RELAY_SOURCE=" + source, "REDIS_URL=" + b.o.redis}, extra...)...)
}

// runRelayRedisStream XADDs n entries to a fresh stream, then times
// `publisher relay` RELAY_SOURCE=redis-stream from its start until the
// group has read every entry and has none pending (each XACKed after its
// confirm), and checks the queue holds each one.
func (b *bench) runRelayRedisStream(ctx context.Context, n int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	c, err := b.redisClient(ctx)
	if err != nil {
		return measurement{}, err
	}
	defer c.Close()
	stream, group := b.name("stream"), "efbench"
	defer c.Del(context.Background(), stream)
	for i := 0; i < n; i += 1000 {
		pipe := c.Pipeline()
		for j := i; j < min(i+1000, n); j++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"type", eventType, "event", redisBody(b.o.size, j)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return measurement{}, fmt.Errorf("XADD: %w", err)
		}
	}
	cmd := b.redisRelayCmd(ctx, exchange, "redis-stream", "REDIS_STREAM="+stream, "REDIS_GROUP="+group,
		"REDIS_CONSUMER=efbench-1", "METRICS_ADDR=off")
	m, err := b.timeRelay(cmd, func() (bool, string, error) {
		// XINFO GROUPS: entries read and pending.
		groups, err := c.XInfoGroups(ctx, stream).Result()
		if err != nil && !isNoGroup(err) {
			return false, "", err
		}
		var read, pending int64
		for _, g := range groups {
			if g.Name == group {
				read, pending = g.EntriesRead, g.Pending
			}
		}
		return read >= int64(n) && pending == 0, fmt.Sprintf("%d of %d entries read, %d pending", read, n, pending), nil
	})
	if err != nil {
		return m, err
	}
	return m, b.verify(queue, n)
}

// isNoGroup: the relay has not created its group yet.
func isNoGroup(err error) bool { return err != nil && err.Error() == "ERR no such key" }

// runRelayRedisPubSub starts `publisher relay` RELAY_SOURCE=redis on a
// fresh pattern, waits until it is ready (subscribed, broker connected),
// then PUBLISHes n messages at -redis-rate and times from the first until
// the queue stops growing. Pub/sub is at most once: the figure is the
// delivered/sent ratio at that pace as much as the rate.
func (b *bench) runRelayRedisPubSub(ctx context.Context, n int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	c, err := b.redisClient(ctx)
	if err != nil {
		return measurement{}, err
	}
	defer c.Close()
	prefix := b.name("chan")
	addr, err := freeAddr()
	if err != nil {
		return measurement{}, err
	}
	cmd := b.redisRelayCmd(ctx, exchange, "redis", "REDIS_CHANNEL_PATTERN="+prefix+":*", "METRICS_ADDR="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitHTTP(ctx, "http://"+addr+"/readyz", b.o.timeout); err != nil {
		return measurement{}, fmt.Errorf("relay not ready: %w: %s", err, tail(stderr.String()))
	}
	channel := prefix + ":" + eventType
	t := b.startTimer()
	p := newPacer(b.o.redisRate)
	for i := range n {
		p.wait(i)
		if err := c.Publish(ctx, channel, redisBody(b.o.size, i)).Err(); err != nil {
			return t.stop(), fmt.Errorf("PUBLISH %d: %w", i, err)
		}
	}
	// Until every message is in, or none came for a second.
	var got, last int
	lastChange := time.Now()
	for got < n && time.Since(lastChange) < time.Second {
		if got, err = b.adm.ready(queue); err != nil {
			return t.stop(), err
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := t.stop()
	if got < n {
		m.elapsed -= time.Since(lastChange) // the quiet second is not the relay's time
	}
	m.clientCPU += procCPU(cmd.Process.Pid)
	if m.extra == nil {
		m.extra = map[string]float64{}
	}
	m.extra["offered_rate"], m.extra["delivered"], m.extra["delivered_ratio"] = b.o.redisRate, float64(got), float64(got)/float64(n)
	switch {
	case got > n:
		return m, fmt.Errorf("queue %s holds %d messages, %d were sent", queue, got, n)
	case got < n*99/100:
		// The rate is the offered one, paced far under the relay's limit:
		// a loss here is a defect, not the at-most-once source's nature.
		return m, fmt.Errorf("queue %s holds %d of %d messages sent at %.0f/s (under 99%%)", queue, got, n, b.o.redisRate)
	}
	return m, nil
}

// freeAddr is a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
