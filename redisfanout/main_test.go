package redisfanout_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
	"github.com/eventfleet/eventfleet/redisfanout"
)

func TestMain(m *testing.M) {
	// go-redis's own lines (dial failures) stay out of the test output.
	redisbridge.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	goleak.VerifyTestMain(m)
}

// subscriber is a client of the tests' Redis that PSUBSCRIBEs pattern, as
// the original design's consumers do, and is ready when it returns.
func subscriber(t testing.TB, pattern string) *redis.PubSub {
	t.Helper()
	c := redis.NewClient(redistest.Options(t))
	ps := c.PSubscribe(context.Background(), pattern)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The subscription is confirmed before anything is published to it.
	if _, err := ps.Receive(ctx); err != nil {
		redistest.Unreachable(t, err)
	}
	t.Cleanup(func() { _ = ps.Close(); _ = c.Close() })
	return ps
}

// next is the subscriber's next message, failing t after timeout.
func next(t testing.TB, ps *redis.PubSub, timeout time.Duration) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			t.Fatalf("no message within %v: %v", timeout, err)
		}
		if m, ok := msg.(*redis.Message); ok {
			return m
		}
	}
}

// newHandler is a Handler closed at cleanup.
func newHandler(t testing.TB, cfg redisfanout.Config) *redisfanout.Handler {
	t.Helper()
	h, err := redisfanout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
