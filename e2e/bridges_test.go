package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/natstest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// The original design's Redis and NATS publishers, publishing as their
// code does, reach an eventfleet worker through `publisher relay`: the
// worker's HANDLER=log line has the type from the channel or subject, the
// body's aggregateId and the source's stable id (a stream entry's, the
// publisher's Nats-Msg-Id). Names are prefixed so the shared servers'
// events:* and events.* stay untouched.
func TestFleet_RedisAndNATSPublishersReachTheWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ, Redis and NATS")
	}
	url := brokertest.URL(t)
	exchange := brokertest.Name(t)
	app := brokertest.Name(t) + "-w"
	q := amqp.AppQueue(app)
	brokertest.Cleanup(t, []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(exchange)}, []string{amqp.HopsExchange(q), exchange})
	ctx := context.Background()

	redisURL, rdb := redistest.URL(t), redistest.Client(t)
	natsURL, nc := natstest.URL(t), natstest.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	prefix := strings.ReplaceAll(brokertest.Name(t), ".", "-")
	stream := prefix + "-events"
	jsStream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	t.Cleanup(func() { _ = rdb.Del(context.Background(), stream, stream+redisbridge.RejectedSuffix).Err() })
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: jsStream, Subjects: []string{prefix + ".events.*"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), jsStream) })

	common := map[string]string{"AMQP_URL": url, "EXCHANGE": exchange, "LOG_LEVEL": "info"}
	env := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for _, src := range []map[string]string{common, extra} {
			for k, v := range src {
				m[k] = v
			}
		}
		return m
	}
	worker := start(t, "worker", env(map[string]string{"APP_NAME": app, "HANDLER": "log",
		"EVENT_TYPES": "CardAddedToLibraryEvent,CardRemovedFromLibraryEvent,LibraryRenamedEvent"}))
	brokertest.Eventually(t, 30*time.Second, "worker consuming", func() bool {
		_, e := worker.output()
		return strings.Contains(e, `"msg":"consuming"`)
	})
	pubsub := start(t, "publisher", env(map[string]string{"RELAY_SOURCE": "redis", "REDIS_URL": redisURL,
		"REDIS_CHANNEL_PATTERN": prefix + ":*"}), "relay")
	streamRelay := start(t, "publisher", env(map[string]string{"RELAY_SOURCE": "redis-stream", "REDIS_URL": redisURL,
		"REDIS_STREAM": stream, "REDIS_CONSUMER": "e2e"}), "relay")
	jsRelay := start(t, "publisher", env(map[string]string{"RELAY_SOURCE": "jetstream", "NATS_URL": natsURL,
		"NATS_SUBJECT": prefix + ".events.*", "NATS_STREAM": jsStream, "NATS_CONSUMER": jsStream + "-relay"}), "relay")
	brokertest.Eventually(t, 30*time.Second, "the pub/sub relay subscribed", func() bool {
		_, e := pubsub.output()
		return strings.Contains(e, `"msg":"subscribed"`)
	})

	if err := rdb.Publish(ctx, prefix+":CardAddedToLibraryEvent", `{"cardId":"c-1","aggregateId":"lib-1"}`).Err(); err != nil {
		t.Fatal(err)
	}
	entry, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream,
		Values: []string{"type", "CardRemovedFromLibraryEvent", "event", `{"cardId":"c-2","aggregateId":"lib-2"}`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, prefix+".events.LibraryRenamedEvent", []byte(`{"name":"n","aggregateId":"lib-3","timestamp":1764756000000}`),
		jetstream.WithMsgID("rename-1")); err != nil {
		t.Fatal(err)
	}

	type line struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		AggregateID string `json:"aggregate_id"`
	}
	got := map[string]line{}
	brokertest.Eventually(t, 60*time.Second, "three events printed by the worker", func() bool {
		out, _ := worker.output()
		for _, s := range strings.Split(out, "\n") {
			var l line
			if json.Unmarshal([]byte(s), &l) == nil && l.Type != "" {
				got[l.Type] = l
			}
		}
		return len(got) == 3
	})
	for typ, want := range map[string]line{
		"CardAddedToLibraryEvent":     {Type: "CardAddedToLibraryEvent", AggregateID: "lib-1"}, // a fresh UUIDv7
		"CardRemovedFromLibraryEvent": {ID: stream + ":" + entry, Type: "CardRemovedFromLibraryEvent", AggregateID: "lib-2"},
		"LibraryRenamedEvent":         {ID: "rename-1", Type: "LibraryRenamedEvent", AggregateID: "lib-3"},
	} {
		l := got[typ]
		if want.ID == "" && len(l.ID) == 36 {
			want.ID = l.ID
		}
		if l != want {
			t.Errorf("worker printed %+v, want %+v", l, want)
		}
	}
	for _, p := range []*proc{pubsub, streamRelay, jsRelay, worker} {
		if code := p.stop(t, 30*time.Second); code != 0 {
			_, e := p.output()
			t.Errorf("%s: exit %d after SIGTERM: %s", p, code, tail(e, 10))
		}
	}
}
