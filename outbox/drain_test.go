package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// gatedPublisher holds every PublishOrdered until its gate opens.
type gatedPublisher struct {
	fakePublisher
	entered chan struct{}
	gate    chan struct{}
}

func (p *gatedPublisher) PublishOrdered(ctx context.Context, evs []event.Event, after []int) error {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	select {
	case <-p.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.fakePublisher.PublishOrdered(ctx, evs, after)
}

// Stop while a batch is in flight waits for its confirms and settles its
// rows, then returns nil; nothing is scanned after.
func TestRelay_StopDrainsTheScanInProgress(t *testing.T) {
	url, conn := migrated(t)
	pub := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	want := addTx(t, conn, true, ev("T", "a", `{}`), ev("T", "a", `{}`), ev("T", "b", `{}`))
	r := startRelay(t, Config{DatabaseURL: url}, pub)
	<-pub.entered
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.Stop(ctx)
	}()
	eventually(t, "the relay stopping", func() bool { return r.life.IsStopping() })
	addTx(t, conn, true, ev("T", "c", `{}`)) // after Stop: left for the next relay
	close(pub.gate)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !sameIDs(pub.ids(), want) {
		t.Fatalf("published %v, want the scan in progress %v", pub.ids(), want)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox"); n != 1 {
		t.Fatalf("%d rows left, want only the one added after Stop", n)
	}
}
