package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/metrics"
)

// Bridge relays NATS messages to the Publisher. Start it, Stop it once.
type Bridge struct {
	cfg    Config
	prefix string // Subject's literal prefix: subject minus it is the type
	pub    Publisher
	log    *slog.Logger
	life   *lifecycle.Lifecycle
	m      *metrics.BridgeMetrics
	ready  chan struct{}

	// in carries messages from nats.go's delivery goroutine (the
	// subscription's or the consumer's handler) to the run goroutine; its
	// capacity is Window.
	in chan item
	// lost is signalled by nats.go's goroutines when the source cannot go
	// on by itself (connection closed, consumer deleted, consume ended).
	lost chan error
	// sourceLost is why the source is being set up again, or nil: set by
	// report, cleared by recover once it runs again; Healthy reads it.
	sourceLost atomic.Pointer[error]

	// Written by Start before run begins, read-only afterwards.
	nc  *nats.Conn
	src source

	// The Stats; each is counted after its metric, so that whoever sees a
	// count sees the metric too.
	published, rejected, redelivered, retried, dropped, reconnects atomic.Int64

	dropMu      sync.Mutex
	lastDropped int // the subscription's Dropped() already counted

	// Rate limits of the per-message WARN lines (rejects, refusals), so
	// that a flood of bad messages cannot flood the log.
	rejectLog, refusedLog rateLimit
}

// Stats are a Bridge's counters since Start.
type Stats struct {
	Published   int64 // messages confirmed by the broker (and acked, JetStream)
	Rejected    int64 // messages that cannot be events (Termed, JetStream)
	Redelivered int64 // JetStream messages delivered again that may have reached the broker already: duplicates possible
	Retried     int64 // JetStream messages the broker did not confirm, Naked to come again later (each Nak)
	Dropped     int64 // messages lost (core NATS slow consumer, or given up)
	Reconnects  int64 // NATS connections re-established
}

// item is one message taken from NATS, made an event when it was taken
// (so that a ModeCore retry keeps its id).
type item struct {
	ev        event.Event
	err       error // why it cannot be an event (bridge.ErrRejected)
	subject   string
	attempts  int           // publishes tried and not confirmed (ModeCore)
	js        jetstream.Msg // nil in ModeCore
	seq       uint64        // its stream sequence (ModeJetStream)
	cseq      uint64        // its consumer sequence: this delivery (ModeJetStream)
	delivered uint64        // its delivery count (ModeJetStream)
	size      int           // its body's bytes
}

// source is what differs between core NATS and JetStream: how messages
// come in, what id they get, and how they are settled.
type source interface {
	// start begins delivering to b.in.
	start(ctx context.Context) error
	// restart recovers from a b.lost report; nil when it cannot.
	restart(ctx context.Context) error
	// tick is called after each batch.
	tick()
	// settled is called once a message is acked, Naked, Termed or
	// dropped.
	settled(it item)
	// stop begins ending delivery and returns a channel closed once
	// nats.go calls no handler any more.
	stop() <-chan struct{}
}

// New checks cfg and returns a Bridge that publishes through pub.
func New(cfg Config, pub Publisher) (*Bridge, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	prefix, _ := typePrefix(cfg.Subject) // checked by withDefaults
	b := &Bridge{cfg: cfg, prefix: prefix, pub: pub, life: lifecycle.New(), m: cfg.Metrics.Bridge(string(cfg.Mode)),
		ready: make(chan struct{}), in: make(chan item, cfg.Window), lost: make(chan error, 1),
		log: cfg.Logger.With("source", string(cfg.Mode), "subject", cfg.Subject)}
	if cfg.Mode == ModeJetStream {
		b.log = b.log.With("stream", cfg.Stream, "consumer", cfg.Consumer)
		b.src = &jsSource{b: b}
	} else {
		b.src = &coreSource{b: b}
	}
	return b, nil
}

// Start connects to NATS, sets the source up (the JetStream stream and
// consumer) and returns once messages flow in the background. A server that
// cannot be reached fails it within ConnectTimeout (or ctx) with
// ErrConnect; a refused JetStream setup with ErrJetStream. After Start,
// nats.go reconnects by itself for as long as the Bridge runs.
func (b *Bridge) Start(ctx context.Context) error {
	if err := b.life.Start(); err != nil {
		return err
	}
	if err := b.connect(ctx); err != nil {
		b.life.Finish(err)
		return err
	}
	if err := b.src.start(ctx); err != nil {
		b.nc.Close()
		b.life.Finish(err)
		return err
	}
	close(b.ready)
	go b.run()
	return nil
}

// Ready is closed once Start succeeded.
func (b *Bridge) Ready() <-chan struct{} { return b.ready }

// Connected reports whether Start succeeded, the NATS connection is up
// now (nats.go may be reconnecting) and the source delivers (a JetStream
// consumer lost is being set up again): Healthy is nil.
func (b *Bridge) Connected() bool { return b.Healthy() == nil }

// Healthy is nil while the Bridge takes messages, else why not: not
// started, stopped, the connection down (nats.go reconnecting), or the
// source lost and being set up again.
func (b *Bridge) Healthy() error {
	select {
	case <-b.ready:
	default:
		return errors.New("nats: not started")
	}
	select {
	case <-b.life.Done():
		if err := b.life.Err(); err != nil {
			return fmt.Errorf("nats: stopped: %w", err)
		}
		return errors.New("nats: stopped")
	default:
	}
	if !b.nc.IsConnected() {
		return errors.New("nats: not connected (reconnecting)")
	}
	if p := b.sourceLost.Load(); p != nil {
		return fmt.Errorf("nats: source lost, recovering: %w", *p)
	}
	return nil
}

// Stop stops taking messages and lets the batch being published finish
// until ctx ends, then abandons it. What was taken and not settled is, in
// ModeJetStream, Naked for the next relay (or delivered again after
// AckWait); in ModeCore, lost and counted as dropped.
func (b *Bridge) Stop(ctx context.Context) error { return b.life.StopAndWait(ctx) }

// Done is closed when the Bridge has stopped.
func (b *Bridge) Done() <-chan struct{} { return b.life.Done() }

// Err is why the Bridge stopped: nil after Stop, else the error that ended
// it (Start's, or ErrConnectionClosed).
func (b *Bridge) Err() error { return b.life.Err() }

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	return Stats{Published: b.published.Load(), Rejected: b.rejected.Load(), Redelivered: b.redelivered.Load(),
		Retried: b.retried.Load(), Dropped: b.dropped.Load(), Reconnects: b.reconnects.Load()}
}

// connect dials NATS once, bounded by ConnectTimeout and ctx; nats.go's own
// reconnecting takes over after.
func (b *Bridge) connect(ctx context.Context) error {
	timeout := b.cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	opts := []nats.Option{
		nats.Name(b.cfg.Name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1), // a relay outlives any outage; Stop ends it
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.life.IsStopping() {
				return
			}
			msg := "NATS connection lost; reconnecting"
			if b.cfg.Mode == ModeCore {
				msg += " (core NATS: what is published meanwhile is lost)"
			}
			b.log.Warn(msg, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.m.Reconnected()
			b.reconnects.Add(1)
			b.log.Info("NATS connection re-established", "url", nc.ConnectedUrlRedacted())
			if js, ok := b.src.(*jsSource); ok {
				js.reconnected() // a consumer deleted meanwhile is never reported
			}
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if !b.life.IsStopping() {
				b.report(fmt.Errorf("%w: %v", ErrConnectionClosed, nc.LastError()))
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			if s != nil && err == nats.ErrSlowConsumer {
				n := b.noteDropped(s)
				b.log.Warn("NATS is dropping messages: the bridge is slower than the publishers (slow consumer)",
					"dropped_so_far", n, "pending_msgs_limit", b.cfg.PendingMsgs, "pending_bytes_limit", b.cfg.PendingBytes)
				return
			}
			b.log.Warn("NATS error", "err", err)
		}),
	}
	if b.cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(b.cfg.CredsFile))
	}
	type dialed struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		nc, err := nats.Connect(b.cfg.URL, opts...)
		ch <- dialed{nc, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			// nats.go's errors name no password; say which server.
			hint := ""
			if errors.Is(d.err, nats.ErrNoServers) {
				hint = " (nothing accepted the connection there: check the address and that nats-server runs)"
			}
			return fmt.Errorf("%w at %s: %v%s", ErrConnect, RedactURL(b.cfg.URL), d.err, hint)
		}
		b.nc = d.nc
		b.log.Info("connected to NATS", "url", d.nc.ConnectedUrlRedacted(), "server_version", d.nc.ConnectedServerVersion())
		return nil
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.nc != nil {
				d.nc.Close()
			}
		}()
		return fmt.Errorf("%w at %s: %w", ErrConnect, RedactURL(b.cfg.URL), ctx.Err())
	}
}

// report hands err to the run goroutine; the first report wins.
func (b *Bridge) report(err error) {
	b.sourceLost.CompareAndSwap(nil, &err)
	select {
	case b.lost <- err:
	default:
	}
}

// noteDropped counts the messages nats.go dropped for s since the last
// call; it returns the total.
func (b *Bridge) noteDropped(s *nats.Subscription) int64 {
	n, err := s.Dropped()
	if err != nil {
		return b.dropped.Load()
	}
	b.dropMu.Lock()
	d := n - b.lastDropped
	if d > 0 {
		b.lastDropped = n
	}
	b.dropMu.Unlock()
	if d > 0 {
		b.m.Dropped(d)
		b.dropped.Add(int64(d))
	}
	return b.dropped.Load()
}
