package workertest

import (
	"context"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// StopTimeout is how long the cleanup's Stop lets running handlers finish
// before it abandons them (their messages stay unacked and are redelivered).
const StopTimeout = 10 * time.Second

// Start starts a Worker with cfg and h and returns at once, failing t if cfg
// is invalid or the Worker does not start. At t's cleanup the Worker is
// stopped; a test may stop it itself before (Stop is safe twice). The
// cleanup's error is dropped: tests that halt their handlers on purpose
// would see ctx's error there, and what a test checks it checks itself.
func Start(t testing.TB, cfg amqp.WorkerConfig, h event.Handler) *amqp.Worker {
	t.Helper()
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("worker Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// WaitReady waits up to timeout until w consumes (its queue is declared and
// bound), failing t if w stops first or the time passes.
func WaitReady(t testing.TB, w *amqp.Worker, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-w.Ready():
	case <-w.Done():
		t.Fatalf("worker stopped before consuming: %v", w.Err())
	case <-timer.C:
		t.Fatalf("worker not consuming after %v", timeout)
	}
}
