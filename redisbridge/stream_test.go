package redisbridge_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// streamKeys is a unique stream for t, and its rejected stream.
func streamKeys(t *testing.T) (stream string, c *redis.Client) {
	stream = "t-" + brokertest.Name(t)
	return stream, redistest.Client(t, stream, stream+redisbridge.RejectedSuffix)
}

// XADD events * type CardAddedToLibraryEvent event '{...}' reaches a queue
// bound to the type with the id "<stream>:<entry-id>", and the entry is
// acked. The entry was added before the group existed: it is not skipped.
func TestStream_OriginalXAddReachesTheQueue(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	body := `{"cardId":"c-1","libraryId":"lib-1","aggregateId":"lib-1"}`
	entry, err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"type", "CardAddedToLibraryEvent", "event", body}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	p, ch, queue := broker(t, "CardAddedToLibraryEvent")
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1"}, p)
	d := receive(t, ch, queue)
	if d.MessageId != stream+":"+entry || d.Type != "CardAddedToLibraryEvent" || string(d.Body) != body {
		t.Fatalf("delivered id %q type %q body %s; want id %s", d.MessageId, d.Type, d.Body, stream+":"+entry)
	}
	if got, _ := d.Headers[amqp.HeaderAggregateID].(string); got != "lib-1" {
		t.Fatalf("aggregate_id header %q, want lib-1", got)
	}
	brokertest.Eventually(t, 10*time.Second, "the entry acked", func() bool {
		pend, err := c.XPending(t.Context(), stream, redisbridge.DefaultGroup).Result()
		return err == nil && pend.Count == 0 && b.Stats().Published == 1
	})
}

// An entry is acked only after the confirm: while the broker holds it, it
// is pending; and no more than Window entries are taken.
func TestStream_AckOnlyAfterTheConfirm(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	for i := range 10 {
		if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{"aggregateId":"a` + string(rune('0'+i)) + `"}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	pub := newGated()
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1", Window: 4}, pub)
	brokertest.Eventually(t, 10*time.Second, "the window full", func() bool { busy, _, _ := pub.waiting(); return busy == 4 })
	pend, err := c.XPending(t.Context(), stream, redisbridge.DefaultGroup).Result()
	if err != nil || pend.Count != 4 {
		t.Fatalf("pending %+v, %v: want the 4 taken, unacked", pend, err)
	}
	close(pub.open)
	brokertest.Eventually(t, 10*time.Second, "all 10 acked", func() bool {
		pend, err := c.XPending(t.Context(), stream, redisbridge.DefaultGroup).Result()
		return err == nil && pend.Count == 0 && b.Stats().Published == 10
	})
	if _, peak, _ := pub.waiting(); peak > 4 {
		t.Fatalf("peak %d publishes at once, window 4", peak)
	}
}

// Entries that cannot be events go to "<stream>:rejected" with the reason,
// and are acked: kept, never retried in a loop.
func TestStream_RejectedEntriesGoToTheRejectedStream(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	for _, v := range [][]string{
		{"event", `{}`},               // no type
		{"type", "T"},                 // no event
		{"type", "T", "event", `[1]`}, // not an object
		{"type", "T", "event", `{"aggregateId":"ok"}`},
	} {
		if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1"}, pub)
	brokertest.Eventually(t, 10*time.Second, "3 rejected, 1 published, none pending", func() bool {
		s := b.Stats()
		pend, err := c.XPending(t.Context(), stream, redisbridge.DefaultGroup).Result()
		return s.Rejected == 3 && s.Published == 1 && err == nil && pend.Count == 0
	})
	rej, err := c.XRange(t.Context(), stream+redisbridge.RejectedSuffix, "-", "+").Result()
	if err != nil || len(rej) != 3 {
		t.Fatalf("rejected stream %v, %v: want 3 entries", rej, err)
	}
	for i, want := range []string{`no "type" field`, `no "event" field`, "JSON object"} {
		if r, _ := rej[i].Values["reason"].(string); !strings.Contains(r, want) || rej[i].Values["entry"] == nil {
			t.Errorf("rejected entry %d: %v; want a reason saying %q and the entry id", i, rej[i].Values, want)
		}
	}
}

// A consumer that took entries and died leaves them pending; another
// consumer of the group claims them after ClaimIdle and publishes them
// with the same ids, counted Redelivered.
func TestStream_ClaimsADeadConsumersEntries(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	ctx := t.Context()
	if err := c.XGroupCreateMkStream(ctx, stream, redisbridge.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{}`}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The dead consumer: it read the entries and never acked them.
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: redisbridge.DefaultGroup, Consumer: "dead", Streams: []string{stream, ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "alive", ClaimIdle: time.Second}, pub)
	brokertest.Eventually(t, 10*time.Second, "3 claimed and acked", func() bool {
		pend, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
		return err == nil && pend.Count == 0 && b.Stats().Published == 3
	})
	if s := b.Stats(); s.Redelivered != 3 {
		t.Fatalf("redelivered %d, want 3", s.Redelivered)
	}
	got := map[string]bool{}
	for _, ev := range pub.events() {
		got[ev.ID] = true
	}
	for _, id := range ids {
		if !got[stream+":"+id] {
			t.Errorf("no event with id %s:%s among %v", stream, id, got)
		}
	}
}

// A Redis that refuses connections is said so, at once, with the URL's
// password hidden; the bridge keeps retrying and stops when told.
func TestBridge_RedisRefused(t *testing.T) {
	t.Parallel()
	for _, src := range []redisbridge.Source{redisbridge.SourcePubSub, redisbridge.SourceStream} {
		url := "redis://:secret@127.0.0.1:" + itoa(brokertest.FreePort(t)) + "/0"
		b := start(t, redisbridge.Config{Source: src, URL: url}, newGated())
		brokertest.Eventually(t, 10*time.Second, string(src)+": a connection error", func() bool { return b.LastError() != nil })
		msg := b.LastError().Error()
		if !strings.Contains(msg, "connection refused") || !strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "secret") {
			t.Errorf("%s: LastError %q: want the refusal and the host, not the password", src, msg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := b.Stop(ctx); err != nil {
			t.Errorf("%s: Stop: %v", src, err)
		}
		cancel()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A live bridge keeps the entries it is still publishing (the broker holds
// the confirms) from going idle: another consumer's claim finds none, for
// as long as the publishes take.
func TestStream_SlowPublishesAreNotClaimedFromALiveBridge(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	ctx := t.Context()
	for range 3 {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	const idle = redisbridge.MinClaimIdle
	pub := newGated()
	start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "slow", ClaimIdle: idle}, pub)
	brokertest.Eventually(t, 10*time.Second, "3 publishes held", func() bool { busy, _, _ := pub.waiting(); return busy == 3 })
	// Watch the entries over four times ClaimIdle: a property over a
	// span, not a wait for a state.
	for end := time.Now().Add(4 * idle); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		pend, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: redisbridge.DefaultGroup, Start: "-", End: "+", Count: 10}).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pend {
			if p.Idle >= idle || p.Consumer != "slow" || p.RetryCount != 1 {
				t.Fatalf("entry %s: idle %v at %s, delivered %d times; want renewed (idle < %v) at slow, once", p.ID, p.Idle, p.Consumer, p.RetryCount, idle)
			}
		}
	}
	claimed, _, err := c.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: redisbridge.DefaultGroup, Consumer: "other", MinIdle: idle, Start: "0-0"}).Result()
	if err != nil || len(claimed) != 0 {
		t.Fatalf("another consumer claimed %d entries (%v) from the live bridge", len(claimed), err)
	}
	close(pub.open)
}

// An entry whose body is over bridge.MaxBody is set aside in
// "<stream>:rejected", not published: past the broker's max_message_size
// it would make the broker close the connection on every attempt (406)
// and stall the relay. The entry after it is relayed.
func TestStream_OversizedEntryIsRejected(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	big := `{"aggregateId":"big","pad":"` + strings.Repeat("x", bridge.MaxBody) + `"}`
	for _, body := range []string{big, `{"aggregateId":"small"}`} {
		if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", body}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p, ch, queue := broker(t, "T")
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1"}, p)
	d := receive(t, ch, queue)
	if string(d.Body) != `{"aggregateId":"small"}` {
		t.Fatalf("delivered %.60s…; want only the small entry", d.Body)
	}
	brokertest.Eventually(t, 20*time.Second, "1 rejected, 1 published, none pending", func() bool {
		s := b.Stats()
		pend, err := c.XPending(t.Context(), stream, redisbridge.DefaultGroup).Result()
		return s.Rejected == 1 && s.Published == 1 && err == nil && pend.Count == 0
	})
	rej, err := c.XRange(t.Context(), stream+redisbridge.RejectedSuffix, "-", "+").Result()
	if err != nil || len(rej) != 1 {
		t.Fatalf("rejected stream: %d entries, %v; want 1", len(rej), err)
	}
	if r, _ := rej[0].Values["reason"].(string); !strings.Contains(r, "MaxBody") {
		t.Fatalf("reason %q: want it to name the limit", r)
	}
}

// A rejected entry whose copy to "<stream>:rejected" fails (the key holds
// a string: WRONGTYPE) stays pending, and is set aside once the key is
// usable again: the ack waits for the copy.
func TestStream_RejectedStreamWrongTypeKeepsTheEntry(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	ctx := t.Context()
	if err := c.Set(ctx, stream+redisbridge.RejectedSuffix, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `[1]`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1", ClaimIdle: time.Second}, pub)
	brokertest.Eventually(t, 10*time.Second, "the copy failed", func() bool {
		err := b.LastError()
		return err != nil && strings.Contains(err.Error(), "WRONGTYPE")
	})
	pend, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
	if err != nil || pend.Count != 1 || b.Stats().Rejected != 0 {
		t.Fatalf("pending %+v, %v, stats %+v: want the entry still pending, none counted rejected", pend, err, b.Stats())
	}
	if err := c.Del(ctx, stream+redisbridge.RejectedSuffix).Err(); err != nil {
		t.Fatal(err)
	}
	// Claimed again after ClaimIdle, and set aside.
	brokertest.Eventually(t, 20*time.Second, "set aside, none pending", func() bool {
		pend, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
		return err == nil && pend.Count == 0 && b.Stats().Rejected == 1
	})
	rej, err := c.XRange(ctx, stream+redisbridge.RejectedSuffix, "-", "+").Result()
	if err != nil || len(rej) != 1 || rej[0].Values["entry"] != id {
		t.Fatalf("rejected stream %v, %v: want entry %s", rej, err, id)
	}
}

// An entry deleted (XDEL, MAXLEN trimming) while pending comes back
// without fields: it is acked and counted dropped, not set aside as
// rejected (there is nothing to keep); the next entry is relayed.
func TestStream_EntryDeletedWhilePendingIsDropped(t *testing.T) {
	t.Parallel()
	stream, c := streamKeys(t)
	ctx := t.Context()
	if err := c.XGroupCreateMkStream(ctx, stream, redisbridge.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{}`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	// c1 took it, then died; the entry is deleted while pending.
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: redisbridge.DefaultGroup, Consumer: "c1", Streams: []string{stream, ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XDel(ctx, stream, id).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "T", "event", `{}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	pub := newGated()
	close(pub.open)
	b := start(t, redisbridge.Config{Source: redisbridge.SourceStream, Stream: stream, Consumer: "c1"}, pub)
	brokertest.Eventually(t, 10*time.Second, "1 dropped, 1 published, none pending", func() bool {
		s := b.Stats()
		pend, err := c.XPending(ctx, stream, redisbridge.DefaultGroup).Result()
		return s.Dropped == 1 && s.Published == 1 && err == nil && pend.Count == 0
	})
	if n, err := c.XLen(ctx, stream+redisbridge.RejectedSuffix).Result(); err != nil || n != 0 || b.Stats().Rejected != 0 {
		t.Fatalf("rejected stream length %d, %v, stats %+v: want nothing rejected", n, err, b.Stats())
	}
}
