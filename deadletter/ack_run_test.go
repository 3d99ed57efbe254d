package deadletter

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestReplay_FailedAckRunIsNotReportedReplayed breaks the scan's channel
// before a full run of removals is acknowledged: the run's ack fails inside
// remove (the 64th removal), and none of the run's messages may then be told
// as replayed, since all of them are back in the queue.
func TestReplay_FailedAckRunIsNotReportedReplayed(t *testing.T) {
	t.Parallel()
	ch := brokertest.Channel(t)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	var told []ReplayedMessage
	res := &ReplayResult{}
	r := &replayer{
		i:   &Inspector{queue: "q", key: "k"},
		s:   &scan{ch: ch, held: ackRun, prefetch: ackRun},
		opt: ReplayOptions{OnMessage: func(rm ReplayedMessage) { told = append(told, rm) }},
		res: res,
	}
	// As settleOldest does for each confirmed copy, oldest first.
	for tag := uint64(1); tag <= ackRun; tag++ {
		d := amqp091.Delivery{DeliveryTag: tag}
		m := Message{ID: "m"}
		if err := r.s.remove(&d); err != nil {
			r.kept(m, err)
			continue
		}
		r.done(ReplayedMessage{Message: m, Outcome: OutcomeReplayed})
	}
	if err := r.commit(); err == nil {
		t.Error("commit: no error, though the run's acknowledgement failed")
	}
	if len(told) != ackRun {
		t.Fatalf("told %d fates, want %d", len(told), ackRun)
	}
	for i, rm := range told {
		if rm.Outcome == OutcomeReplayed {
			t.Errorf("message %d told %q though its removal was never acknowledged", i, rm.Outcome)
		}
	}
	if res.Replayed != 0 || res.Kept != ackRun {
		t.Errorf("Replayed %d, Kept %d; want 0 and %d", res.Replayed, res.Kept, ackRun)
	}
}

// TestPurge_FailedAckIsNotReportedPurged breaks the scan's channel after a
// removal: the ack sent before the scan waits for more fails, and OnPurge
// must not hear of the message, which is back in the queue.
func TestPurge_FailedAckIsNotReportedPurged(t *testing.T) {
	t.Parallel()
	ch := brokertest.Channel(t)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	deliveries := make(chan amqp091.Delivery, 2)
	deliveries <- amqp091.Delivery{DeliveryTag: 1, Type: "t", MessageId: "a"}
	deliveries <- amqp091.Delivery{DeliveryTag: 2, Type: "t", MessageId: "b"}
	s := &scan{Scan: Scan{Depth: 2}, ch: ch, prefetch: 2, idle: time.Minute, deliveries: deliveries}
	var told []Message
	var res PurgeResult
	err := (&Inspector{queue: "q"}).purgeSelected(context.Background(), s,
		PurgeOptions{Filter: Filter{Type: "t"}, OnPurge: func(m Message) { told = append(told, m) }}, &res)
	if err == nil {
		t.Error("purge: no error, though the acknowledgement failed")
	}
	if len(told) != 0 || res.Purged != 0 {
		t.Errorf("OnPurge heard of %d messages, Purged %d; want 0 and 0: no ack reached the broker", len(told), res.Purged)
	}
}
