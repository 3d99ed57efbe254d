package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsURL is the NATS with JetStream the jetstream relay contender uses:
// NATS_URL, else the machine's.
func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// runRelayJetStream fills a fresh JetStream stream with n messages as the
// original design's publisher sends them (subject <prefix>.events.<type>,
// the bench body), then times `publisher relay` with RELAY_SOURCE=jetstream
// from its start until its consumer has nothing pending or unacked (each
// ack follows the broker's confirm), and checks the queue holds each one.
func (b *bench) runRelayJetStream(ctx context.Context, n int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	nc, err := nats.Connect(natsURL(), nats.Timeout(5*time.Second))
	if err != nil {
		return measurement{}, fmt.Errorf("NATS at %s (set NATS_URL): %w", natsURL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return measurement{}, err
	}
	prefix := strings.ReplaceAll(b.name("js"), ".", "-")
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	subject := prefix + ".events.*"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}}); err != nil {
		return measurement{}, fmt.Errorf("create stream %s: %w", stream, err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), stream) }()
	body := makeBody(b.o.size, 0)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(prefix+".events."+eventType, body); err != nil {
			return measurement{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(b.o.timeout):
		return measurement{}, errors.New("JetStream did not acknowledge the fill")
	}
	consumer := stream + "-relay"
	cmd := b.relayCmd(ctx, exchange, "RELAY_SOURCE=jetstream", "NATS_URL="+natsURL(), "NATS_SUBJECT="+subject,
		"NATS_STREAM="+stream, "NATS_CONSUMER="+consumer, "METRICS_ADDR=off")
	m, err := b.timeRelay(cmd, func() (bool, string, error) {
		// The relay creates the consumer; until then there is none to ask.
		c, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			return false, "no consumer yet", nil
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, "consumer info: " + err.Error(), nil
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= uint64(n),
			fmt.Sprintf("%d of %d delivered, %d unacked", info.Delivered.Stream, n, info.NumAckPending), nil
	})
	if err != nil {
		return m, err
	}
	return m, b.verify(queue, n)
}
