package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/redisbridge"
)

// LocalURL is the Redis of the machine the tests run on, used when
// TEST_REDIS_URL is unset.
const LocalURL = "redis://127.0.0.1:6379/0"

// URL is the tests' Redis. It skips t with -short.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Redis; skipped with -short")
	}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return LocalURL
}

// Options are go-redis's options for URL(t).
func Options(t testing.TB) *redis.Options {
	t.Helper()
	u := URL(t)
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL %s: %v", redisbridge.RedactURL(u), err)
	}
	return opt
}

// Client is a client of the tests' Redis that has answered a PING. At
// cleanup it deletes keys and is closed.
func Client(t testing.TB, keys ...string) *redis.Client {
	t.Helper()
	c := redis.NewClient(Options(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		Unreachable(t, err)
	}
	t.Cleanup(func() {
		if len(keys) > 0 {
			_ = c.Del(context.Background(), keys...).Err()
		}
		_ = c.Close()
	})
	return c
}

// Unreachable fails t for err, an error from the tests' Redis, saying how
// to provide one.
func Unreachable(t testing.TB, err error) {
	t.Helper()
	t.Fatalf("no Redis at %s for the tests (set TEST_REDIS_URL): %v", redisbridge.RedactURL(URL(t)), err)
}
