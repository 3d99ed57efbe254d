package natsbridge

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/eventfleet/eventfleet/bridge"
)

// coreSource is a core NATS subscription: no ack, no redelivery. Messages
// nats.go cannot hand over within PendingMsgs/PendingBytes are dropped
// by it and counted here.
type coreSource struct {
	b   *Bridge
	sub *nats.Subscription // written by start, before run

	// The bytes of the bodies taken from nats.go and not settled (in b.in,
	// the batch, the retries): at most WindowBytes, unless one message
	// alone is larger. handle (nats.go's goroutine) adds, settled (run's)
	// takes away and signals freed.
	mu    sync.Mutex
	used  int
	freed chan struct{}
	// stopped is set by stop once the subscription is gone, under hmu,
	// which handle holds while it runs: stop returns only after the last
	// handler call has counted its message.
	hmu     sync.Mutex
	stopped bool
}

func (s *coreSource) start(context.Context) error {
	b := s.b
	s.freed = make(chan struct{}, 1)
	sub, err := b.nc.Subscribe(b.cfg.Subject, s.handle)
	if err != nil {
		return fmt.Errorf("natsbridge: subscribe to %q: %w", b.cfg.Subject, err)
	}
	if err := sub.SetPendingLimits(b.cfg.PendingMsgs, b.cfg.PendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("natsbridge: subscription limits: %w", err)
	}
	// Once the server has the subscription, a message published after
	// Start returned reaches the Bridge.
	if err := b.nc.FlushTimeout(b.cfg.ConnectTimeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("%w: subscribe to %q: %v", ErrConnect, b.cfg.Subject, err)
	}
	s.sub = sub
	b.log.Info("subscribed to core NATS: at most once (messages published while the bridge is away or too slow are lost, and counted when NATS reports them)",
		"pending_msgs_limit", b.cfg.PendingMsgs, "pending_bytes_limit", b.cfg.PendingBytes)
	return nil
}

// handle runs on the subscription's delivery goroutine; blocking here
// leaves messages in nats.go's bounded pending buffer.
func (s *coreSource) handle(m *nats.Msg) {
	b := s.b
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.stopped || !s.take(len(m.Data)) {
		b.m.Dropped(1)
		b.dropped.Add(1)
		return
	}
	ev, err := bridge.Event(subjectType(b.prefix, m.Subject), m.Data, "")
	if err == nil {
		bridge.From(&ev, "nats:"+m.Subject)
	}
	it := item{ev: ev, err: err, subject: m.Subject, size: len(m.Data)}
	select {
	case b.in <- it:
	case <-b.life.Stopping():
		s.settled(it)
		b.m.Dropped(1)
		b.dropped.Add(1)
	}
}

// take waits until n more bytes fit WindowBytes (a message alone larger is
// let through when nothing else is held); false when the Bridge stops.
func (s *coreSource) take(n int) bool {
	for {
		s.mu.Lock()
		if s.used == 0 || s.used+n <= s.b.cfg.WindowBytes {
			s.used += n
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		select {
		case <-s.freed:
		case <-s.b.life.Stopping():
			return false
		}
	}
}

func (s *coreSource) restart(context.Context) error {
	return fmt.Errorf("natsbridge: core NATS subscription cannot be set up again")
}

func (s *coreSource) tick() { s.b.noteDropped(s.sub) }

func (s *coreSource) settled(it item) {
	s.mu.Lock()
	s.used -= it.size
	s.mu.Unlock()
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

func (s *coreSource) stop() <-chan struct{} {
	s.b.noteDropped(s.sub)
	// What nats.go still buffers is lost with the subscription.
	if n, _, err := s.sub.Pending(); err == nil && n > 0 {
		s.b.m.Dropped(n)
		s.b.dropped.Add(int64(n))
	}
	_ = s.sub.Unsubscribe()
	s.hmu.Lock() // a handler call under way ends first (Stopping is closed)
	s.stopped = true
	s.hmu.Unlock()
	return closedChan
}
