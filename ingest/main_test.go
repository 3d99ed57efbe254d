package ingest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The Handler starts no goroutine of its own; the tests' servers and the
// real Publisher of TestHandler_RealBroker must all be gone at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
