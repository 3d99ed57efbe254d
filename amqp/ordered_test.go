package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// PublishOrdered sends an event only after the one it follows was
// confirmed: the followers of an event that failed are not sent at all
// (ErrNotSent, also down a chain), while every other event goes out; each
// chain arrives in its order.
func TestPublisher_OrderedHoldsTheFollowersOfAFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "#")
	p := b.publisher(t, amqp.PublisherConfig{Window: 16})
	const n, chains = 300, 7
	evs := make([]event.Event, n)
	after := make([]int, n)
	for i := range evs {
		evs[i] = ev("Ordered", fmt.Sprintf("agg-%d", i%chains), i)
		evs[i].ID = fmt.Sprintf("e-%03d", i)
		after[i] = i - chains // the previous event of its aggregate
	}
	evs[10].Type = "bad*type" // chain 3 stops here: 17, 24, ... are not sent
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.PublishOrdered(ctx, evs, after)
	var be *amqp.BatchError
	if !errors.As(err, &be) || !errors.Is(be.Errs[10], event.ErrInvalidType) {
		t.Fatalf("PublishOrdered = %v, want event 10 invalid", err)
	}
	want := map[string]bool{}
	for i := range evs {
		switch {
		case i%chains == 10%chains && i > 10:
			if !errors.Is(be.Errs[i], amqp.ErrNotSent) {
				t.Errorf("event %d (after the failed one) error %v, want ErrNotSent", i, be.Errs[i])
			}
		case i == 10:
		default:
			if be.Errs[i] != nil {
				t.Errorf("event %d: %v", i, be.Errs[i])
			}
			want[evs[i].ID] = true
		}
	}
	got := brokertest.Drain(t, tap, len(want), 5*time.Second)
	if len(got) != len(want) {
		t.Fatalf("%d events arrived, want %d", len(got), len(want))
	}
	lastOf := map[string]int{}
	for _, d := range got {
		if !want[d.MessageId] {
			t.Fatalf("%s arrived; it follows a failed event and must not have been sent", d.MessageId)
		}
		var i int
		_, _ = fmt.Sscanf(d.MessageId, "e-%d", &i)
		if prev, ok := lastOf[evs[i].AggregateID]; ok && prev > i {
			t.Fatalf("%s arrived after e-%03d of its aggregate", d.MessageId, prev)
		}
		lastOf[evs[i].AggregateID] = i
	}
	if err := p.PublishOrdered(ctx, evs[:2], []int{0, 1}); err == nil {
		t.Error("PublishOrdered with an event following itself succeeded, want an error")
	}
	if err := p.PublishOrdered(ctx, evs[:2], []int{-1}); err == nil {
		t.Error("PublishOrdered with fewer links than events succeeded, want an error")
	}
}
