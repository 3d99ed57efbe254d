package deadletter

import (
	"testing"

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
