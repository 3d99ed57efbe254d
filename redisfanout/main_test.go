package redisfanout_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/redisbridge"
	"github.com/eventfleet/eventfleet/redisfanout"
)

func TestMain(m *testing.M) {
	// go-redis's own lines (dial failures) stay out of the test output.
	redisbridge.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	goleak.VerifyTestMain(m)
}

// redisURL is the tests' Redis: TEST_REDIS_URL, else the machine's.
func redisURL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Redis; skipped with -short")
	}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return redisfanout.DefaultURL
}

// subscriber is a client of the tests' Redis that PSUBSCRIBEs pattern, as
// the original design's consumers do, and is ready when it returns.
func subscriber(t testing.TB, pattern string) *redis.PubSub {
	t.Helper()
	opt, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	ps := c.PSubscribe(context.Background(), pattern)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The subscription is confirmed before anything is published to it.
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("no Redis at %s for the tests (set TEST_REDIS_URL): %v", redisbridge.RedactURL(redisURL(t)), err)
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
