package amqp_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Handlers abandoned on timeout by design finish on their own.
		goleak.IgnoreTopFunction("github.com/eventfleet/eventfleet/amqp_test.blockingHandler.func1"),
	)
}
