package natsbridge

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/eventfleet/eventfleet/bridge"
)

// coreSource is a core NATS subscription: no ack, no redelivery. Messages
// nats.go cannot hand over within PendingMsgs/PendingBytes are dropped
// by it and counted here.
type coreSource struct {
	b   *Bridge
	sub *nats.Subscription // written by start, before run
}

func (s *coreSource) start(context.Context) error {
	b := s.b
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
	ev, err := bridge.Event(subjectType(b.prefix, m.Subject), m.Data, "")
	select {
	case b.in <- item{ev: ev, err: err, subject: m.Subject}:
	case <-b.life.Stopping():
		b.m.Dropped(1)
		b.dropped.Add(1)
	}
}

func (s *coreSource) restart(context.Context) error {
	return fmt.Errorf("natsbridge: core NATS subscription cannot be set up again")
}

func (s *coreSource) tick() { s.b.noteDropped(s.sub) }

func (s *coreSource) settled(item) {}

func (s *coreSource) stop() <-chan struct{} {
	s.b.noteDropped(s.sub)
	// What nats.go still buffers is lost with the subscription.
	if n, _, err := s.sub.Pending(); err == nil && n > 0 {
		s.b.m.Dropped(n)
		s.b.dropped.Add(int64(n))
	}
	_ = s.sub.Unsubscribe()
	return closedChan
}
