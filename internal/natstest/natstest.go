package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventfleet/eventfleet/natsbridge"
)

// LocalURL is the NATS server (with JetStream) of the machine the tests run
// on, used when TEST_NATS_URL is unset.
const LocalURL = "nats://127.0.0.1:4222"

// URL is the tests' NATS. It skips t with -short.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs NATS; skipped with -short")
	}
	if u := os.Getenv("TEST_NATS_URL"); u != "" {
		return u
	}
	return LocalURL
}

// Conn is a connection to the tests' NATS, closed at cleanup.
func Conn(t testing.TB) *nats.Conn {
	t.Helper()
	u := URL(t)
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("no NATS at %s for the tests (set TEST_NATS_URL): %v", natsbridge.RedactURL(u), err)
	}
	t.Cleanup(nc.Close)
	return nc
}
