package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/metrics"
)

// Publisher is what a Bridge publishes through: *amqp.Publisher.
type Publisher interface {
	// Publish returns once the broker confirmed ev, or why not.
	Publish(ctx context.Context, ev event.Event) error
}

// Bridge relays one Redis source. Start it, Stop it once.
type Bridge struct {
	cfg  Config
	opt  *redis.Options
	pub  Publisher
	log  *slog.Logger
	life *lifecycle.Lifecycle
	m    *metrics.BridgeMetrics

	// slots holds a token per message taken and not yet settled: the
	// reading goroutine takes one before it reads, the message's publishing
	// goroutine gives it back once the message is settled.
	slots chan struct{}
	work  sync.WaitGroup // publishing goroutines

	mu sync.Mutex // guards tails and taken, used by the reader and publishers
	// tails: aggregate → closed once its latest message's publish ended,
	// so that the next one of that aggregate is sent after it.
	tails map[string]chan struct{}
	// taken (SourceStream): entry ids being published; a claim that
	// returns one of them leaves it to the goroutine publishing it.
	taken map[string]bool

	rejLog rejectLog // SourcePubSub: rate-limits the rejected messages' log lines

	// gaugeMu orders the in-flight gauge's updates: the reader adds and
	// every publishing goroutine subtracts, and without it a Set of an
	// older count could land after a newer one and leave the gauge stale.
	gaugeMu sync.Mutex

	published, rejected, redelivered, dropped, reconnects atomic.Int64
	inFlight                                              atomic.Int64 // dispatched, not yet settled; changed with addInFlight
	connected                                             atomic.Bool  // subscribed, or the group ready
	failing                                               atomic.Bool  // publishes fail: logged once, at the first
	lastErr                                               atomic.Pointer[error]
}

// Stats are a Bridge's counters since Start.
type Stats struct {
	Published   int64 // messages confirmed and settled
	Rejected    int64 // messages that cannot be events, set aside (SourceStream) or logged
	Redelivered int64 // stream entries taken again (claimed, or pending at start)
	Dropped     int64 // lost: pub/sub messages taken and abandoned at a hard stop; stream entries deleted (XDEL, MAXLEN) before they were relayed
	Reconnects  int64 // sessions re-established after one was lost
	InFlight    int   // messages being published or settled (at most Window)
	Connected   bool  // subscribed (SourcePubSub) or reading the group (SourceStream)
}

// New checks cfg and returns a Bridge that publishes through pub.
func New(cfg Config, pub Publisher) (*Bridge, error) {
	cfg, opt, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("source", string(cfg.Source), "redis", RedactURL(cfg.URL))
	return &Bridge{cfg: cfg, opt: opt, pub: pub, log: log, life: lifecycle.New(), m: cfg.Metrics.Bridge(string(cfg.Source)),
		slots: make(chan struct{}, cfg.Window), tails: map[string]chan struct{}{}, taken: map[string]bool{}}, nil
}

// Start begins relaying in the background: it returns at once, and
// connection failures are retried with backoff (LastError says the latest).
func (b *Bridge) Start(context.Context) error {
	if err := b.life.Start(); err != nil {
		return err
	}
	go b.run()
	return nil
}

// Stop stops reading and lets the messages taken be published and settled
// until ctx ends, then abandons them: a stream entry stays pending and is
// claimed later; a pub/sub message is lost (Dropped).
func (b *Bridge) Stop(ctx context.Context) error { return b.life.StopAndWait(ctx) }

// Done is closed when the Bridge has stopped.
func (b *Bridge) Done() <-chan struct{} { return b.life.Done() }

// Err is why the Bridge stopped by itself (an ErrRefused); nil after Stop.
func (b *Bridge) Err() error { return b.life.Err() }

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	return Stats{Published: b.published.Load(), Rejected: b.rejected.Load(), Redelivered: b.redelivered.Load(),
		Dropped: b.dropped.Load(), Reconnects: b.reconnects.Load(), InFlight: int(b.inFlight.Load()), Connected: b.connected.Load()}
}

// LastError is the last connection or publish failure; nil once the source
// answers again and publishes go through.
func (b *Bridge) LastError() error {
	if p := b.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Bridge) noteErr(err error) { b.lastErr.Store(&err) }

func (b *Bridge) run() {
	client := redis.NewClient(b.opt)
	var err error
	switch b.cfg.Source {
	case SourceStream:
		err = b.runStream(client)
	default:
		err = b.runPubSub(client)
	}
	// What was taken is published and settled (or, after Halt, abandoned)
	// before the client that settles it closes.
	b.work.Wait()
	_ = client.Close()
	if err != nil {
		b.log.Error("stopped", "err", err)
	}
	b.life.Finish(err)
}

// connected marks a session up; a session after a lost one is a reconnect.
func (b *Bridge) sessionUp(gen uint64, everUp *bool) {
	b.connected.Store(true)
	b.lastErr.Store(nil)
	if *everUp {
		b.reconnects.Add(1)
		b.m.Reconnected()
		b.log.Info("connected to Redis again", "session", gen)
	}
	*everUp = true
}

// failed logs a connection failure the loop retries.
func (b *Bridge) failed(err error, lost bool, _ uint64, attempt int) {
	b.connected.Store(false)
	b.noteErr(err)
	if lost {
		b.log.Warn("Redis connection lost; reconnecting", "err", err, "attempt", attempt)
	} else {
		b.log.Warn("Redis connection failed; retrying", "err", err, "attempt", attempt)
	}
}

// connErr names the (redacted) URL; go-redis's errors never hold the
// password. A refusal of the credentials or of a command is ErrRefused:
// retrying cannot fix it.
func (b *Bridge) connErr(what string, err error) error {
	msg := err.Error()
	// An unknown command: a Redis older than 6.2 has no XAUTOCLAIM.
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password", "ERR unknown command"} {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("%w: %s %s: %w", ErrRefused, what, RedactURL(b.cfg.URL), err)
		}
	}
	return fmt.Errorf("redisbridge: %s %s: %w", what, RedactURL(b.cfg.URL), err)
}

func isRefused(err error) bool { return errors.Is(err, ErrRefused) }

// take waits for a free slot; false when the Bridge stops meanwhile.
func (b *Bridge) take() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	case <-b.life.Stopping():
		return false
	}
}

// takeUpTo takes at least one slot (waiting) and at most n; 0 when the
// Bridge stops meanwhile.
func (b *Bridge) takeUpTo(n int) int {
	if !b.take() {
		return 0
	}
	got := 1
	for got < n {
		select {
		case b.slots <- struct{}{}:
			got++
			continue
		default:
		}
		break
	}
	return got
}

// give frees n slots.
func (b *Bridge) give(n int) {
	for range n {
		<-b.slots
	}
}

// dispatch publishes ev, whose slot the caller took, after its aggregate's
// previous message, and then calls settle with the outcome: nil (confirmed),
// an error wrapping bridge.ErrRejected, or the halt's error (abandoned). The
// slot is freed after settle.
func (b *Bridge) dispatch(ev event.Event, settle func(error)) {
	agg := ev.AggregateID
	mine := make(chan struct{})
	var prev chan struct{}
	if agg != "" {
		b.mu.Lock()
		prev = b.tails[agg]
		b.tails[agg] = mine
		b.mu.Unlock()
	}
	b.addInFlight(1)
	b.work.Add(1)
	go func() {
		defer b.work.Done()
		defer b.give(1)
		defer b.addInFlight(-1)
		err := func() error {
			defer func() {
				close(mine)
				if agg != "" {
					b.mu.Lock()
					if b.tails[agg] == mine {
						delete(b.tails, agg)
					}
					b.mu.Unlock()
				}
			}()
			if prev != nil {
				select {
				case <-prev:
				case <-b.life.Halted():
					return b.life.HaltContext().Err()
				}
			}
			return b.publish(ev)
		}()
		settle(err)
	}()
}

// addInFlight changes the messages in flight and sets the gauge to the
// count, one change at a time.
func (b *Bridge) addInFlight(delta int64) {
	b.gaugeMu.Lock()
	defer b.gaugeMu.Unlock()
	b.m.InFlight(int(b.inFlight.Add(delta)))
}

// pause waits d; false when the Bridge halts meanwhile.
func (b *Bridge) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.life.Halted():
		return false
	}
}
