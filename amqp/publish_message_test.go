package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestPublisher_PublishMessage: a prepared message goes out as given and is
// confirmed; an unroutable one is ErrReturned and is not kept in the unrouted
// queue (its owner, such as a replay, keeps the original).
func TestPublisher_PublishMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "Routed")
	p := b.publisher(t, amqp.PublisherConfig{AppID: "not-added"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	msg := amqp091.Publishing{MessageId: "m-1", Type: "Routed", Headers: amqp091.Table{amqp.HeaderReplays: int32(2)},
		DeliveryMode: amqp091.Persistent, Body: []byte(`{}`)}
	if err := p.PublishMessage(ctx, b.exchange, "Routed", msg); err != nil {
		t.Fatalf("PublishMessage routed: %v", err)
	}
	ds := brokertest.Drain(t, tap, 1, 300*time.Millisecond)
	if len(ds) != 1 || ds[0].MessageId != "m-1" || ds[0].AppId != "" || ds[0].Headers[amqp.HeaderReplays] != int32(2) {
		t.Fatalf("tap got %+v, want m-1 as sent", ds)
	}

	msg.MessageId = "m-2"
	err := p.PublishMessage(ctx, b.exchange, "Nobody", msg)
	if !errors.Is(err, amqp.ErrReturned) {
		t.Fatalf("PublishMessage unroutable: %v, want ErrReturned", err)
	}
	if n := brokertest.Depth(t, amqp.UnroutedQueue(b.exchange)); n != 0 || p.Unrouted() != 0 {
		t.Errorf("unroutable message kept: %d in the unrouted queue, Unrouted() = %d", n, p.Unrouted())
	}
}

// TestPublisher_SendMessagePipelinesInOrder: many messages in flight from one
// goroutine arrive in the order sent, each confirmed.
func TestPublisher_SendMessagePipelinesInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tap := bindTap(t, b.exchange, "Routed")
	p := b.publisher(t, amqp.PublisherConfig{Window: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 500
	var want []string
	var inflight []*amqp.InFlight
	for i := range n {
		id := fmt.Sprintf("m-%03d", i)
		want = append(want, id)
		f, err := p.SendMessage(ctx, b.exchange, "Routed", amqp091.Publishing{MessageId: id, Body: []byte(`{}`)})
		if err != nil {
			t.Fatalf("SendMessage %s: %v", id, err)
		}
		inflight = append(inflight, f)
		// Settle the oldest when the window is full, as Replay does.
		if len(inflight) == 64 {
			if err := inflight[0].Wait(ctx); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			inflight = inflight[1:]
		}
	}
	for _, f := range inflight {
		if err := f.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	var got []string
	for _, d := range brokertest.Drain(t, tap, n, 300*time.Millisecond) {
		got = append(got, d.MessageId)
	}
	if !slices.Equal(got, want) {
		t.Errorf("tap got %d messages, not in the order sent: %v", len(got), got)
	}
}
