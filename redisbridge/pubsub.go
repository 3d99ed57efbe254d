package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
)

// connectTimeout bounds a connect and its first answer (the subscription,
// the group): an address that swallows packets must not hold the bridge.
const connectTimeout = 10 * time.Second

func (b *Bridge) runPubSub(client *redis.Client) error {
	everUp := false
	return lifecycle.Loop[*redis.PubSub]{
		Backoff: b.cfg.Backoff,
		Quit:    b.life.Stopping(),
		Fatal:   isRefused,
		Connect: func(gen uint64) (*redis.PubSub, error) {
			ps, err := b.subscribe(client)
			if err == nil {
				b.sessionUp(gen, &everUp)
				b.log.Info("subscribed", "pattern", b.cfg.Pattern)
			}
			return ps, err
		},
		Serve:  b.servePubSub,
		Failed: b.failed,
	}.Run()
}

// subscribe PSUBSCRIBEs on a fresh connection and waits for Redis to
// confirm it: from then on every matching message reaches this session.
func (b *Bridge) subscribe(client *redis.Client) (*redis.PubSub, error) {
	ctx, cancel := context.WithTimeout(b.life.HaltContext(), connectTimeout)
	defer cancel()
	ps := client.Subscribe(ctx)
	if err := ps.PSubscribe(ctx, b.cfg.Pattern); err != nil {
		_ = ps.Close()
		return nil, b.connErr("subscribe at", err)
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, connectTimeout)
		if err != nil {
			_ = ps.Close()
			return nil, b.connErr("subscribe at", err)
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "psubscribe" {
			return ps, nil
		}
	}
}

// servePubSub relays the session's messages until it ends. Each message
// read waits for a free slot before the next read, so with the window full
// the bridge holds Window messages and the one in hand, and what Redis sends
// meanwhile waits in the socket and Redis's output buffer, not here.
//
// The session only reads, so it pings every PingInterval, and a read that
// gets nothing, not even a pong, for 3 × PingInterval ends it: a
// half-open connection (a peer gone without a FIN or RST, a proxy that
// stopped forwarding) accepts pings into the socket buffer without error,
// and only the missing answers show it.
func (b *Bridge) servePubSub(ps *redis.PubSub, _ uint64, _ int) error {
	ended := make(chan struct{})
	var pinger sync.WaitGroup
	// Run last to first: close the subscription, end the pinger, wait for it.
	defer pinger.Wait()
	defer close(ended)
	defer ps.Close()
	every := b.cfg.PingInterval
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ended:
				return
			case <-b.life.Stopping():
				_ = ps.Close() // ends the Receive below
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), every)
				err := ps.Ping(ctx)
				cancel()
				if err != nil {
					_ = ps.Close()
					return
				}
			}
		}
	}()
	ctx := b.life.HaltContext()
	silence := 3 * every
	for {
		msg, err := ps.ReceiveTimeout(ctx, silence)
		if err != nil {
			if b.life.IsStopping() {
				return nil
			}
			b.connected.Store(false)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("redisbridge: no answer from %s for %v, 3 pings: the connection is taken for dead: %w",
					RedactURL(b.cfg.URL), silence, err)
			}
			return fmt.Errorf("redisbridge: receive from %s: %w", RedactURL(b.cfg.URL), err)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a pong, or a subscription
		}
		ev, err := bridge.Event(typeOf(b.cfg.Pattern, m.Channel), []byte(m.Payload), "")
		if err != nil {
			b.rejectedMessage(m.Channel, err)
			continue
		}
		bridge.From(&ev, "redis:"+m.Channel)
		if !b.take() {
			// Stopping: the message in hand was never published.
			b.dropped.Add(1)
			b.m.Dropped(1)
			return nil
		}
		b.dispatch(ev, func(err error) {
			switch {
			case err == nil:
				b.published.Add(1)
				b.m.Published(1)
			case errors.Is(err, bridge.ErrRejected):
				b.rejectedMessage(m.Channel, err)
			default:
				// At most once: nothing to put it back into.
				b.dropped.Add(1)
				b.m.Dropped(1)
			}
		})
	}
}

// countRejected counts and logs, once, a stream entry that cannot be an
// event (its name, the entry id, is short; the entry is kept in
// "<stream>:rejected").
func (b *Bridge) countRejected(where, name string, err error, attrs ...any) {
	b.rejected.Add(1)
	b.m.Rejected()
	b.log.Warn("message rejected: it cannot be an event", append([]any{where, name, "reason", err.Error()}, attrs...)...)
}

// A pub/sub message that cannot be an event leaves no trace but the log,
// and a publisher gone wrong can send thousands a second on channels of any
// length: the WARN line is rate-limited and names the channel shortened.
const (
	rejectLogEvery = time.Second // at most one line per this
	maxLoggedName  = 64          // bytes of a channel name in a line
)

// rejectLog is the pub/sub rejections' log limiter; the reading goroutine
// and the publishing ones both use it, under mu.
type rejectLog struct {
	mu         sync.Mutex
	next       time.Time // no line before this
	suppressed int       // rejections not logged since the last line
}

// rejectedMessage counts a pub/sub message that cannot be an event, and
// logs it unless a line was written less than rejectLogEvery ago; the next
// line says how many were not logged ("suppressed").
func (b *Bridge) rejectedMessage(channel string, err error) {
	b.rejected.Add(1)
	b.m.Rejected()
	l := &b.rejLog
	l.mu.Lock()
	now := time.Now()
	if now.Before(l.next) {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.suppressed, l.next = 0, now.Add(rejectLogEvery)
	l.mu.Unlock()
	attrs := []any{"channel", clip(channel, maxLoggedName), "reason", err.Error()}
	if len(channel) > maxLoggedName {
		attrs = append(attrs, "channel_bytes", len(channel))
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	b.log.Warn("message rejected: it cannot be an event", attrs...)
}

// clip is s cut to at most n bytes, on a rune boundary, with "…" when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
