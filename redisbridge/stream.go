package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
)

// Entry fields of SourceStream.
const (
	FieldType  = "type"  // the event type, as the channel's name carries it for pub/sub
	FieldEvent = "event" // the JSON body, as the pub/sub publisher sends it
	// FieldReason and FieldEntry are added to an entry copied to
	// "<stream>:rejected": why, and the entry's id in the stream.
	FieldReason = "reason"
	FieldEntry  = "entry"
)

// maxRead is the most entries one read or claim takes: reads are sized to
// the free slots, up to this.
const maxRead = 100

// settleTimeout bounds an XACK or a rejection's write. Not the halt's
// context: an entry the broker confirmed is acked even during a hard stop,
// if Redis answers in time (else it is published again later).
const settleTimeout = 5 * time.Second

func (b *Bridge) runStream(client *redis.Client) error {
	everUp := false
	return lifecycle.Loop[*redis.Client]{
		Backoff: b.cfg.Backoff,
		Quit:    b.life.Stopping(),
		Fatal:   isRefused,
		Connect: func(gen uint64) (*redis.Client, error) {
			if err := b.ensureGroup(client); err != nil {
				return nil, err
			}
			b.sessionUp(gen, &everUp)
			b.log.Info("reading the stream", "stream", b.cfg.Stream, "group", b.cfg.Group, "consumer", b.cfg.Consumer,
				"claim_idle", b.cfg.ClaimIdle.String())
			return client, nil
		},
		Serve:  b.serveStream,
		Failed: b.failed,
	}.Run()
}

// ensureGroup creates the group (and the stream) unless it exists. It
// starts at "0", the stream's beginning: entries written before the first
// relay ran are relayed, not skipped.
func (b *Bridge) ensureGroup(client *redis.Client) error {
	ctx, cancel := context.WithTimeout(b.life.HaltContext(), connectTimeout)
	defer cancel()
	err := client.XGroupCreateMkStream(ctx, b.cfg.Stream, b.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return b.connErr("create the consumer group at", err)
	}
	return nil
}

// serveStream reads the group until a Redis error ends the session. First
// the entries pending at this consumer (a restart under the same name),
// then new ones; every claimEvery, the entries idle at other consumers
// longer than ClaimIdle.
func (b *Bridge) serveStream(client *redis.Client, _ uint64, _ int) error {
	defer b.connected.Store(false)
	ctx := b.life.HaltContext()
	claimEvery := min(max(b.cfg.ClaimIdle/2, 50*time.Millisecond), 10*time.Second)
	// ended cancels renew, a renewal in progress too, when the session ends.
	ended, endSession := context.WithCancel(b.life.HaltContext())
	var renewing sync.WaitGroup
	// Run last to first: end renew, then wait for it, so that it never
	// runs after the session (and run's client.Close).
	defer renewing.Wait()
	defer endSession()
	// A third of ClaimIdle: two renewals may be late before a claim.
	renewing.Add(1)
	go func() {
		defer renewing.Done()
		b.renew(ended, client, min(max(b.cfg.ClaimIdle/3, 20*time.Millisecond), 10*time.Second))
	}()
	block := min(time.Second, claimEvery)
	// this consumer's pending entries after this id, ">" once they are read
	own := "0"
	var lastClaim time.Time
	cursor := "0-0"
	for !b.life.IsStopping() {
		if own == ">" && time.Since(lastClaim) >= claimEvery {
			lastClaim = time.Now()
			next, err := b.claim(ctx, client, cursor)
			if err != nil {
				return b.streamErr(err)
			}
			cursor = next
		}
		n := b.takeUpTo(maxRead)
		if n == 0 {
			return nil
		}
		res, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: b.cfg.Group, Consumer: b.cfg.Consumer, Streams: []string{b.cfg.Stream, own},
			Count: int64(n), Block: block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			b.give(n)
			continue
		}
		if err != nil {
			b.give(n)
			if b.life.IsStopping() {
				return nil
			}
			return b.streamErr(err)
		}
		var msgs []redis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		pending := own != ">"
		switch {
		case pending && len(msgs) == 0:
			own = ">" // no pending entries left: from now on, new ones
		case pending:
			own = msgs[len(msgs)-1].ID
		}
		b.give(n - len(msgs))
		for _, msg := range msgs {
			b.take1(client, msg, pending)
		}
	}
	return nil
}

// renew resets, every interval, the idle time of the entries this bridge
// is publishing (XCLAIM to itself, JUSTID: the delivery count stays), on
// its own goroutine so that it goes on while the window is full. So only a
// bridge that died, or froze for longer than ClaimIdle, loses its entries
// to a claim, however long a publish takes while the broker is away. It
// returns when ended is done, the session's end.
func (b *Bridge) renew(ended context.Context, client *redis.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ended.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		ids := make([]string, 0, len(b.taken))
		for id := range b.taken {
			ids = append(ids, id)
		}
		b.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(ended, settleTimeout)
		err := client.XClaimJustID(ctx, &redis.XClaimArgs{Stream: b.cfg.Stream, Group: b.cfg.Group, Consumer: b.cfg.Consumer,
			MinIdle: 0, Messages: ids}).Err()
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			// The read loop sees a lost connection too, and ends the session.
			b.log.Debug("could not renew the entries in flight", "err", err)
		}
	}
}

// streamErr is a session's end; a group deleted meanwhile (NOGROUP) is
// created again by the next connect.
func (b *Bridge) streamErr(err error) error {
	return b.connErr("read the stream at", err)
}

// claim takes, from where the last claim ended, the entries idle longer
// than ClaimIdle at any consumer, as far as slots are free, and returns
// where the next claim starts ("0-0" once the pending list was swept).
func (b *Bridge) claim(ctx context.Context, client *redis.Client, cursor string) (string, error) {
	for {
		n := 0
		for n < maxRead {
			select {
			case b.slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		if n == 0 {
			return cursor, nil // the window is full: claim later
		}
		msgs, next, err := client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: b.cfg.Stream, Group: b.cfg.Group, Consumer: b.cfg.Consumer,
			MinIdle: b.cfg.ClaimIdle, Start: cursor, Count: int64(n),
		}).Result()
		if err != nil {
			b.give(n)
			return cursor, err
		}
		b.give(n - len(msgs))
		for _, msg := range msgs {
			b.take1(client, msg, true)
		}
		if next == "0-0" || len(msgs) < n {
			return next, nil
		}
		cursor = next
	}
}

// take1 publishes one entry whose slot the caller took, or sets it aside.
// An entry still being published here (a claim returned it: its publish
// is slow) is left to the goroutine publishing it.
func (b *Bridge) take1(client *redis.Client, msg redis.XMessage, again bool) {
	b.mu.Lock()
	busy := b.taken[msg.ID]
	if !busy {
		b.taken[msg.ID] = true
	}
	b.mu.Unlock()
	if busy {
		b.give(1)
		return
	}
	if len(msg.Values) == 0 {
		// Deleted (XDEL, or trimmed by XADD MAXLEN / XTRIM) while pending:
		// Redis keeps the id in the pending list and returns it without
		// fields. Nothing is left to publish; it is acked and counted
		// dropped, not rejected: there is nothing to set aside.
		b.dropDeleted(client, msg.ID)
		b.mu.Lock()
		delete(b.taken, msg.ID)
		b.mu.Unlock()
		b.give(1)
		return
	}
	if again {
		b.redelivered.Add(1)
		b.m.Redelivered()
	}
	done := func() {
		b.mu.Lock()
		delete(b.taken, msg.ID)
		b.mu.Unlock()
	}
	typ, okType := msg.Values[FieldType].(string)
	body, okBody := msg.Values[FieldEvent].(string)
	var err error
	switch {
	case !okType:
		err = fmt.Errorf("%w: the entry has no %q field", bridge.ErrRejected, FieldType)
	case !okBody:
		err = fmt.Errorf("%w: the entry has no %q field", bridge.ErrRejected, FieldEvent)
	}
	ev, evErr := bridge.Event(typ, []byte(body), b.cfg.Stream+":"+msg.ID)
	if err == nil {
		err = evErr
	}
	if err != nil {
		b.reject(client, msg, err)
		done()
		b.give(1)
		return
	}
	bridge.From(&ev, "redis-stream:"+b.cfg.Stream)
	b.dispatch(ev, func(err error) {
		defer done()
		switch {
		case err == nil:
			b.ack(client, msg.ID)
		case errors.Is(err, bridge.ErrRejected):
			b.reject(client, msg, err)
		}
		// Else abandoned at a hard stop: left pending, claimed later.
	})
}

// ack settles an entry the broker confirmed.
func (b *Bridge) ack(client *redis.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := client.XAck(ctx, b.cfg.Stream, b.cfg.Group, id).Err(); err != nil {
		b.noteErr(err)
		b.log.Warn("XACK failed: the entry stays pending and is published again (same event id)", "entry", id, "err", err)
		return
	}
	b.published.Add(1)
	b.m.Published(1)
}

// dropDeleted acks an entry deleted before it was relayed, and counts it
// dropped: it is lost, and the log says so once.
func (b *Bridge) dropDeleted(client *redis.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := client.XAck(ctx, b.cfg.Stream, b.cfg.Group, id).Err(); err != nil {
		b.noteErr(err)
		b.log.Warn("XACK of a deleted entry failed: it stays pending", "entry", id, "err", err)
		return
	}
	b.dropped.Add(1)
	b.m.Dropped(1)
	b.log.Warn("stream entry deleted before it was relayed (XDEL or MAXLEN trimming): lost, acked", "entry", id)
}

// reject copies the entry to "<stream>:rejected" with the reason, then
// acks it: it is kept for an operator and never read again. The ack waits
// for the copy (not MULTI/EXEC: EXEC runs the XACK even when the XADD
// fails, e.g. WRONGTYPE, and the entry would be lost). If Redis fails
// meanwhile the entry stays pending and is rejected again when claimed,
// ClaimIdle later: no hot loop; a copy made before a failed ack is then
// made twice.
func (b *Bridge) reject(client *redis.Client, msg redis.XMessage, why error) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	values := make(map[string]any, len(msg.Values)+2)
	for k, v := range msg.Values {
		values[k] = v
	}
	values[FieldReason] = why.Error()
	values[FieldEntry] = msg.ID
	err := client.XAdd(ctx, &redis.XAddArgs{Stream: b.cfg.Stream + RejectedSuffix, Values: values}).Err()
	if err == nil {
		err = client.XAck(ctx, b.cfg.Stream, b.cfg.Group, msg.ID).Err()
	}
	if err != nil {
		b.noteErr(err)
		b.log.Warn("could not set a rejected entry aside; it stays pending", "entry", msg.ID, "reason", why.Error(), "err", err)
		return
	}
	b.countRejected("entry", msg.ID, why, "set_aside_in", b.cfg.Stream+RejectedSuffix)
}
