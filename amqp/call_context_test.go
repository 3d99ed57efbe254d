package amqp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// A callContext reports what context.WithDeadline would, whichever of its
// methods a handler calls first.
func TestCallContext_AgreesWithWithDeadline(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")

	t.Run("running", func(t *testing.T) {
		dl := time.Now().Add(time.Hour)
		c := newCallContext(parent, dl)
		defer c.end()
		if d, ok := c.Deadline(); !ok || !d.Equal(dl) {
			t.Fatalf("Deadline = %v, %v; want %v, true", d, ok, dl)
		}
		if err := c.Err(); err != nil {
			t.Fatalf("Err = %v before the deadline", err)
		}
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("parent's value lost")
		}
		if c.armed.Load() != nil {
			t.Fatal("armed without Done: the cost this type exists to avoid")
		}
		select {
		case <-c.Done():
			t.Fatal("Done closed before the deadline")
		default:
		}
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("armed context lost the parent's value")
		}
	})

	t.Run("deadline, Err first", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(-time.Millisecond))
		defer c.end()
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Fatalf("Err = %v, want DeadlineExceeded", err)
		}
		assertDone(t, c)
		if cause := context.Cause(c); cause != context.DeadlineExceeded {
			t.Fatalf("Cause = %v, want DeadlineExceeded", cause)
		}
	})

	t.Run("deadline, Cause first", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(-time.Millisecond))
		defer c.end()
		if cause := context.Cause(c); cause != context.DeadlineExceeded {
			t.Fatalf("Cause = %v, want DeadlineExceeded", cause)
		}
	})

	t.Run("deadline passes while watched", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(20*time.Millisecond))
		defer c.end()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed at the deadline")
		}
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Fatalf("Err = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("parent cancelled", func(t *testing.T) {
		cause := errors.New("hard stop")
		p, cancel := context.WithCancelCause(parent)
		c := newCallContext(p, time.Now().Add(time.Hour))
		defer c.end()
		cancel(cause)
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("Err = %v, want Canceled", err)
		}
		assertDone(t, c)
		if got := context.Cause(c); got != cause {
			t.Fatalf("Cause = %v, want the parent's", got)
		}
	})

	t.Run("parent cancelled while watched", func(t *testing.T) {
		p, cancel := context.WithCancel(parent)
		c := newCallContext(p, time.Now().Add(time.Hour))
		defer c.end()
		done := c.Done()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed by the parent's cancel")
		}
	})

	t.Run("parent's earlier deadline", func(t *testing.T) {
		early := time.Now().Add(time.Minute)
		p, cancel := context.WithDeadline(parent, early)
		defer cancel()
		c := newCallContext(p, time.Now().Add(time.Hour))
		defer c.end()
		if d, _ := c.Deadline(); !d.Equal(early) {
			t.Fatalf("Deadline = %v, want the parent's %v", d, early)
		}
	})

	t.Run("ended before watched", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(time.Hour))
		c.end()
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("Err after end = %v, want Canceled", err)
		}
		assertDone(t, c)
	})

	t.Run("ended while watched", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(time.Hour))
		done := c.Done()
		c.end()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed by end")
		}
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("Err = %v, want Canceled", err)
		}
	})

	t.Run("children", func(t *testing.T) {
		c := newCallContext(parent, time.Now().Add(time.Hour))
		child, cancel := context.WithCancel(c)
		defer cancel()
		fired := make(chan struct{})
		stop := context.AfterFunc(c, func() { close(fired) })
		defer stop()
		c.end()
		assertDone(t, child)
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatal("AfterFunc not called at end")
		}
	})
}

// Arming races with end and with other watchers without losing a cancel.
func TestCallContext_ConcurrentArmAndEnd(t *testing.T) {
	for range 200 {
		c := newCallContext(context.Background(), time.Now().Add(time.Hour))
		var wg sync.WaitGroup
		dones := make([]<-chan struct{}, 4)
		for i := range dones {
			wg.Add(1)
			go func() { defer wg.Done(); dones[i] = c.Done() }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.end() }()
		wg.Wait()
		for _, d := range dones {
			select {
			case <-d:
			case <-time.After(10 * time.Second):
				t.Fatal("a Done channel armed concurrently with end stayed open")
			}
		}
	}
}

func assertDone(t *testing.T, c context.Context) {
	t.Helper()
	select {
	case <-c.Done():
	default:
		t.Fatalf("Done open while Err = %v", c.Err())
	}
}

func BenchmarkCallContext(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("WithDeadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithDeadline(parent, time.Now().Add(time.Minute))
			_ = ctx.Err()
			cancel()
		}
	})
	b.Run("callContext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := newCallContext(parent, time.Now().Add(time.Minute))
			_ = ctx.expired()
			ctx.end()
		}
	})
}
