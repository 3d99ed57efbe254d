package natsbridge_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// rabbit is a real Publisher on a fresh exchange, and a queue bound to
// types there, all deleted when t ends.
func rabbit(t *testing.T, types ...string) (pub *amqp.Publisher, exchange, queue string) {
	t.Helper()
	exchange, queue = topology(t, types...)
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(t), Exchange: exchange, AppID: "library", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pub.Stop(ctx)
	})
	return pub, exchange, queue
}

// drain reads want messages from queue, failing t if they do not all come
// within 20s.
func drain(t *testing.T, queue string, want int) []amqp091.Delivery {
	t.Helper()
	ds := brokertest.Drain(t, queue, want, 20*time.Second)
	if len(ds) < want {
		t.Fatalf("%d messages in %s, want %d", len(ds), queue, want)
	}
	return ds
}

// loseFirstConfirm publishes through pub but reports the first batch as
// not confirmed, as when a confirm is lost with the connection: the
// source delivers it again, and the broker gets it twice.
type loseFirstConfirm struct {
	pub  *amqp.Publisher
	done atomic.Bool
}

func (l *loseFirstConfirm) PublishBatch(ctx context.Context, evs []event.Event) error {
	err := l.pub.PublishBatch(ctx, evs)
	if err == nil && l.done.CompareAndSwap(false, true) {
		return amqp.ErrNacked
	}
	return err
}
