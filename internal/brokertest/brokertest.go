// Package brokertest gives integration tests a real RabbitMQ: the one named by
// AMQP_URL, or else one started with testcontainers where a Docker engine is
// reachable. With neither, tests fail with a message that says how to provide
// one. Tests isolate themselves with unique names (Name) and delete what they
// declared (Cleanup).
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcrabbit "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
)

// Image is the RabbitMQ image started when AMQP_URL is not set.
const Image = "rabbitmq:3.13-management-alpine"

var (
	once      sync.Once
	brokerURL string
	urlErr    string
)

// URL returns the broker URL for tests, failing t when there is none.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs RabbitMQ; skipped with -short")
	}
	once.Do(func() { brokerURL, urlErr = find() })
	if brokerURL == "" {
		t.Fatal(urlErr)
	}
	return brokerURL
}

func find() (string, string) {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u, ""
	}
	const how = "no RabbitMQ for integration tests: set AMQP_URL (e.g. AMQP_URL=amqp://guest:guest@127.0.0.1:5672/), " +
		"or run where a Docker engine is reachable so testcontainers can start " + Image
	if !dockerLikely() {
		return "", how + " (no Docker socket found)"
	}
	// testcontainers up to v0.41 panics instead of failing when no Docker
	// engine answers; turn that into the message above.
	var msg string
	func() {
		defer func() {
			if r := recover(); r != nil {
				msg = how + " (testcontainers: " + strings.TrimSpace(toString(r)) + ")"
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := tcrabbit.Run(ctx, Image)
		if err != nil {
			msg = how + " (testcontainers: " + err.Error() + ")"
			return
		}
		u, err := c.AmqpURL(ctx)
		if err != nil {
			_ = testcontainers.TerminateContainer(c)
			msg = how + " (testcontainers: " + err.Error() + ")"
			return
		}
		brokerURL = u
	}()
	if brokerURL != "" {
		return brokerURL, ""
	}
	return "", msg
}

func toString(r any) string {
	if e, ok := r.(error); ok {
		return e.Error()
	}
	if s, ok := r.(string); ok {
		return s
	}
	return "panic"
}

func dockerLikely() bool {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return true
	}
	for _, p := range []string{"/var/run/docker.sock", os.Getenv("XDG_RUNTIME_DIR") + "/docker.sock"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return true
		}
	}
	return false
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Name returns a name unique to this test run, starting with a readable form
// of the test's name: use it for apps and exchanges.
func Name(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Trim(nonName.ReplaceAllString(t.Name(), "-"), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return "t-" + base + "-" + hex.EncodeToString(b)
}

// Channel opens a connection and channel for test plumbing, closed at cleanup.
func Channel(t testing.TB) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(URL(t))
	if err != nil {
		t.Fatalf("connect to test broker: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// Cleanup deletes the queues and exchanges on the test broker when the test ends.
func Cleanup(t testing.TB, queues, exchanges []string) {
	t.Helper()
	CleanupAt(t, URL(t), queues, exchanges)
}

// CleanupAt deletes the queues and exchanges on the broker at url when the
// test ends. A broker that is gone by then (a private node) is skipped.
func CleanupAt(t testing.TB, url string, queues, exchanges []string) {
	t.Cleanup(func() {
		conn, err := amqp091.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		// Each delete on its own channel: a failed one closes its channel.
		for _, q := range queues {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(q, false, false, false)
				_ = ch.Close()
			}
		}
		for _, x := range exchanges {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(x, false, false)
				_ = ch.Close()
			}
		}
	})
}

// Depth returns the number of ready messages in queue (passive declare), or
// -1 when the queue does not exist.
func Depth(t testing.TB, queue string) int {
	t.Helper()
	conn, err := amqp091.Dial(URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return -1
	}
	return q.Messages
}

// Eventually polls cond every 20ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Drain gets every message from queue (acking each) until it is empty for
// quiet, or until want messages were read.
func Drain(t testing.TB, queue string, want int, quiet time.Duration) []amqp091.Delivery {
	t.Helper()
	ch := Channel(t)
	var out []amqp091.Delivery
	last := time.Now()
	for len(out) < want || want < 0 {
		d, ok, err := ch.Get(queue, true /* autoAck */)
		if err != nil {
			t.Fatalf("get from %q: %v", queue, err)
		}
		if !ok {
			if time.Since(last) > quiet {
				break
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		last = time.Now()
		out = append(out, d)
	}
	return out
}
