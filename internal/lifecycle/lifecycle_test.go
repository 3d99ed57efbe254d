package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLifecycle_StopBeforeStart(t *testing.T) {
	t.Parallel()
	l := New()
	if l.Stop() {
		t.Fatal("Stop reported started for an idle lifecycle")
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done not closed after Stop before Start")
	}
	if got := l.State(); got != Stopped {
		t.Fatalf("state = %v, want stopped", got)
	}
	if err := l.Start(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
	if l.Err() != nil || l.HaltContext().Err() == nil {
		t.Fatalf("err %v, halt ctx %v: want nil and cancelled", l.Err(), l.HaltContext().Err())
	}
	l.Stop() // twice is fine
}

func TestLifecycle_States(t *testing.T) {
	t.Parallel()
	l := New()
	steps := []struct {
		do   func()
		want State
	}{
		{func() {}, Idle},
		{func() {
			if err := l.Start(); err != nil {
				t.Fatal(err)
			}
		}, Running},
		{func() {
			if err := l.Start(); !errors.Is(err, ErrStarted) {
				t.Fatalf("second Start = %v, want ErrStarted", err)
			}
		}, Running},
		{func() {
			if !l.Stop() {
				t.Fatal("Stop reported not started")
			}
		}, Stopping},
		{func() { l.Stop() }, Stopping},
		{func() { l.Halt() }, Halting},
		{func() { l.Finish(nil) }, Stopped},
		{func() { l.Finish(errors.New("late")) }, Stopped},
	}
	for i, s := range steps {
		s.do()
		if got := l.State(); got != s.want {
			t.Fatalf("step %d: state %v, want %v", i, got, s.want)
		}
	}
	if l.Err() != nil {
		t.Fatalf("Err = %v: only the first Finish counts", l.Err())
	}
}

func TestLifecycle_FailRecordsErrorBeforeHalt(t *testing.T) {
	t.Parallel()
	l := New()
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	fatal := errors.New("topology mismatch")
	seen := make(chan error, 1)
	go func() {
		<-l.Halted()
		seen <- l.Err() // a waiter woken by the halt must see why
	}()
	l.Finish(fatal)
	if err := <-seen; !errors.Is(err, fatal) {
		t.Fatalf("error seen at halt = %v, want %v", err, fatal)
	}
	if !l.IsStopping() {
		t.Fatal("a failed lifecycle is not stopping")
	}
	if err := l.Enter(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Enter after Finish = %v", err)
	}
}

func TestLifecycle_DrainWaitsForCalls(t *testing.T) {
	t.Parallel()
	l := New()
	if err := l.Enter(); err != nil { // calls are admitted before Start too
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	if err := l.Enter(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Enter after Stop = %v, want ErrStopped", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a call in flight = %v, want the deadline", err)
	}
	drained := make(chan error, 1)
	go func() { drained <- l.Drain(context.Background()) }()
	l.Leave()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	// The first Drain's watcher ends with the call too.
}

// StopAndWait lets work that ends on Stopping finish; work that needs the
// halt gets it once ctx ends, and the call still waits for Done.
func TestLifecycle_StopAndWait(t *testing.T) {
	t.Parallel()
	soft := New()
	if err := soft.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { <-soft.Stopping(); soft.Finish(nil) }()
	if err := soft.StopAndWait(context.Background()); err != nil {
		t.Fatalf("work that ends on Stopping: %v", err)
	}
	if soft.HaltContext().Err() == nil {
		t.Fatal("halt context still live after StopAndWait")
	}

	hard := New()
	if err := hard.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { <-hard.Halted(); hard.Finish(nil) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := hard.StopAndWait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("work that needs the halt: %v, want the deadline", err)
	}
	select {
	case <-hard.Done():
	default:
		t.Fatal("StopAndWait returned before Done")
	}
	if err := New().StopAndWait(context.Background()); err != nil {
		t.Fatalf("before Start: %v", err)
	}
	_ = hard.StopAndWait(context.Background()) // twice is fine
}
