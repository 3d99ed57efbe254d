// Package brokertest gives integration tests a real RabbitMQ. It looks, in
// this order, for the broker named by AMQP_URL, for one answering at LocalURL,
// and for a Docker engine where testcontainers can start Image; it says once
// on stderr which broker the tests use (password hidden). With none of them,
// tests fail with a message that says how to provide one. Tests isolate
// themselves with unique names (Name) and delete what they declared (Cleanup).
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
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

// Image is the RabbitMQ image started when no other broker is found.
const Image = "rabbitmq:3.13-management-alpine"

// LocalURL is where the tests look for a running broker when AMQP_URL is
// unset: a broker installed on the machine (apt, Homebrew) with its defaults.
const LocalURL = "amqp://guest:guest@127.0.0.1:5672/"

// probeTimeout bounds the connection and handshake to LocalURL: a refused
// port answers at once, and a peer that accepts and stays silent must not
// hold the tests up.
const probeTimeout = 5 * time.Second

// ErrNoBroker is the cause when no broker was found for the tests.
var ErrNoBroker = errors.New("no RabbitMQ for integration tests")

var (
	once      sync.Once
	brokerURL string
	urlErr    error
)

// URL returns the broker URL for tests, failing t when there is none.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs RabbitMQ; skipped with -short")
	}
	once.Do(func() {
		var from string
		brokerURL, from, urlErr = discover(os.Getenv("AMQP_URL"), LocalURL, DockerLikely, startContainer)
		if urlErr == nil {
			fmt.Fprintf(os.Stderr, "brokertest: tests use RabbitMQ at %s (%s)\n", Redact(brokerURL), from)
		}
	})
	if urlErr != nil {
		t.Fatal(urlErr)
	}
	return brokerURL
}

// discover picks the tests' broker: envURL when set (not dialled: an explicit
// choice wins, and its failures show in the tests), else localURL when a
// broker answers there, else one started by container when docker says an
// engine may be reachable. It returns the URL and where it came from.
func discover(envURL, localURL string, docker func() bool, container func() (string, error)) (string, string, error) {
	if envURL != "" {
		return envURL, "AMQP_URL", nil
	}
	localErr := probe(localURL)
	if localErr == nil {
		return localURL, "AMQP_URL unset; a broker answers there", nil
	}
	why := fmt.Sprintf("AMQP_URL is unset, nothing answers at %s (%v)", Redact(localURL), localErr)
	if !docker() {
		why += ", and no Docker socket was found"
	} else {
		u, err := container()
		if err == nil {
			return u, "AMQP_URL unset, none at " + Redact(localURL) + "; testcontainers started " + Image, nil
		}
		why += ", and testcontainers failed: " + err.Error()
	}
	return "", "", fmt.Errorf("%w: %s. Provide one: set AMQP_URL=amqp://user:password@host:5672/, "+
		"or start a local RabbitMQ (apt install rabbitmq-server, or brew install rabbitmq; guest/guest on 127.0.0.1:5672), "+
		"or run where a Docker engine is reachable so testcontainers can start %s", ErrNoBroker, why, Image)
}

// probe reports whether a RabbitMQ accepts guest's login at u within
// probeTimeout.
func probe(u string) error {
	conn, err := amqp091.DialConfig(u, amqp091.Config{Dial: amqp091.DefaultDial(probeTimeout)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// startContainer starts Image with testcontainers and returns its AMQP URL.
// Ryuk, testcontainers' reaper, removes the container when the tests end.
func startContainer() (u string, err error) {
	// testcontainers up to v0.41 panics instead of failing when no Docker
	// engine answers; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s", strings.TrimSpace(toString(r)))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tcrabbit.Run(ctx, Image)
	if err != nil {
		return "", err
	}
	u, err = c.AmqpURL(ctx)
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return "", err
	}
	return u, nil
}

// URLWith is the test broker's URL with another password or vhost ("" keeps
// the broker's own), for tests of refused logins.
func URLWith(t testing.TB, password, vhost string) string {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	if vhost != "" {
		u.Path = "/" + vhost
	}
	return u.String()
}

// Redact returns u with its password replaced, for messages.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
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

// DockerLikely reports whether a Docker engine may be reachable, for the
// testcontainers fallback of test helpers.
func DockerLikely() bool {
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
	return ChannelAt(t, URL(t))
}

// ChannelAt is Channel on the broker at url (a private node's, say).
func ChannelAt(t testing.TB, url string) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", Redact(url), err)
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

// TopicExchange declares a fresh durable topic exchange, declared exactly as
// eventfleet's Publisher declares its exchange (so that a Publisher on it
// matches), and a queue bound to it with "#", both deleted when t ends,
// together with the queues also(exchange) names (such as the unrouted queue
// a Publisher on it declares: amqp.UnroutedQueue).
func TopicExchange(t testing.TB, also func(exchange string) []string) (exchange, queue string) {
	t.Helper()
	exchange = Name(t)
	queue = exchange + ".all"
	queues := []string{queue}
	if also != nil {
		queues = append(queues, also(exchange)...)
	}
	Cleanup(t, queues, []string{exchange})
	ch := Channel(t)
	if err := ch.ExchangeDeclare(exchange, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	if _, err := ch.QueueDeclare(queue,
		false, // durable: a test queue
		false, // autoDelete: it is read on other connections
		false, // exclusive: same reason
		false, // noWait
		nil); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false /* noWait */, nil); err != nil {
		t.Fatalf("bind queue: %v", err)
	}
	return exchange, queue
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
