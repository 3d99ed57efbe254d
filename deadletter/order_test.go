package deadletter_test

import (
	"slices"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/deadletter"
)

// TestReplay_OnMessageInQueueOrderWhenKeptWithoutSending seeds a message
// whose copy goes out (and comes back unroutable) followed by one that is
// kept without being sent (no routing key): OnMessage must still tell them
// in queue order, though the first one's fate is known later.
func TestReplay_OnMessageInQueueOrderWhenKeptWithoutSending(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.ch.QueueDeclare(f.unrouted, true /* durable */, false, false, false,
		amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	f.publish("", f.unrouted,
		amqp091.Publishing{MessageId: "ev-0", Type: "AEvent", Body: []byte(`{}`)},
		amqp091.Publishing{MessageId: "ev-1", Body: []byte(`{}`)}) // no routing key anywhere
	var told []string
	res, err := f.forUnrouted().Replay(ctx(t), deadletter.ReplayOptions{
		OnMessage: func(r deadletter.ReplayedMessage) { told = append(told, string(r.Outcome)+" "+r.Message.ID) }})
	if err == nil || res.Kept != 2 {
		t.Fatalf("replay: %+v, %v; want both kept", res, err)
	}
	if want := []string{"kept ev-0", "kept ev-1"}; !slices.Equal(told, want) {
		t.Errorf("told %v, want %v (queue order)", told, want)
	}
}
