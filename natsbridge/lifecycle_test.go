package natsbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/natsbridge"
)

// TestBridge_StopBeforeStart: Stop before Start, or twice, is fine; Start
// after Stop is refused.
func TestBridge_StopBeforeStart(t *testing.T) {
	t.Parallel()
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeCore, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := b.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	<-b.Done()
	if err := b.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}
	if err := b.Start(ctx); !errors.Is(err, natsbridge.ErrStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
}

// TestBridge_StartTwice: a second Start is refused; Stop twice is fine.
func TestBridge_StartTwice(t *testing.T) {
	b := startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore, Subject: unique(t) + ".*"}, &fakePublisher{})
	select {
	case <-b.Ready():
	default:
		t.Fatal("Ready not closed after Start")
	}
	if err := b.Start(context.Background()); !errors.Is(err, natsbridge.ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := b.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
}
