package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/bridge"
)

// jsSource is a durable pull consumer on Stream: explicit acks, at most
// Window messages unacked (MaxAckPending), so the stream holds what the
// broker cannot take yet instead of the Bridge's memory.
type jsSource struct {
	b  *Bridge
	js jetstream.JetStream
	// cons and cc are written by start and restart, both on the
	// goroutine that owns the source (Start's, then run's).
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
}

func (s *jsSource) start(ctx context.Context) error {
	js, err := jetstream.New(s.b.nc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJetStream, err)
	}
	s.js = js
	if err := s.setup(ctx); err != nil {
		return err
	}
	return s.consume()
}

// setup makes sure of the stream (creating it only when missing) and
// creates or updates the durable consumer. Only APIs of nats-server 2.9
// are used: one filter subject, no consumer actions.
func (s *jsSource) setup(ctx context.Context) error {
	b := s.b
	ctx, cancel := context.WithTimeout(ctx, 2*b.cfg.ConnectTimeout)
	defer cancel()
	_, err := s.js.Stream(ctx, b.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     b.cfg.Stream,
			Subjects: []string{b.cfg.Subject},
			Storage:  jetstream.FileStorage,
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			err = nil // another relay made it meanwhile
		case err == nil:
			b.log.Info("created the JetStream stream, which did not exist, capturing the subject (file storage, the server's default limits)")
		}
	}
	// Without JetStream nobody answers the API subject: no responders.
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: JetStream is not enabled on this server (nats-server -js) or for this account: %v", ErrJetStream, err)
	}
	if err != nil {
		return fmt.Errorf("%w: stream %s: %v", ErrJetStream, b.cfg.Stream, err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		Description:   "eventfleet relay: publishes " + b.cfg.Subject + " to RabbitMQ",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.Window,
		FilterSubject: b.cfg.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("%w: durable consumer %s on stream %s (its filter must be within the stream's subjects): %v",
			ErrJetStream, b.cfg.Consumer, b.cfg.Stream, err)
	}
	s.cons = cons
	return nil
}

func (s *jsSource) consume() error {
	b := s.b
	cc, err := s.cons.Consume(s.handle,
		jetstream.PullMaxMessages(b.cfg.Window),
		jetstream.ConsumeErrHandler(s.onError))
	if err != nil {
		return fmt.Errorf("%w: consume: %v", ErrJetStream, err)
	}
	s.cc = cc
	b.log.Info("consuming the JetStream stream: at least once (acked after the broker's confirm)",
		"ack_wait", b.cfg.AckWait.String(), "max_ack_pending", b.cfg.Window)
	return nil
}

// handle runs on the consumer's delivery goroutine. Blocking here is
// bounded: the server sends no more than MaxAckPending unacked messages.
func (s *jsSource) handle(msg jetstream.Msg) {
	b := s.b
	meta, err := msg.Metadata()
	if err != nil {
		b.log.Warn("not a JetStream message; ignored", "err", err)
		return
	}
	// A stable id: the publisher's own (its deduplication id), else the
	// message's place in the stream. A redelivery keeps it.
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		id = fmt.Sprintf("%s:%d", meta.Stream, meta.Sequence.Stream)
	}
	if meta.NumDelivered > 1 {
		b.m.Redelivered()
		b.redelivered.Add(1)
		b.log.Info("message delivered again: it may reach the broker twice, with the same id",
			"id", id, "stream_seq", meta.Sequence.Stream, "delivered", meta.NumDelivered)
	}
	ev, err := bridge.Event(subjectType(b.prefix, msg.Subject()), msg.Data(), id)
	it := item{ev: ev, err: err, subject: msg.Subject(), js: msg, seq: meta.Sequence.Stream, delivered: meta.NumDelivered}
	select {
	case b.in <- it:
	case <-b.life.Stopping():
		_ = msg.Nak()
	}
}

func (s *jsSource) onError(_ jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		s.b.report(err)
	case errors.Is(err, jetstream.ErrConnectionClosed):
		// The connection's ClosedHandler reports it.
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		s.b.log.Debug("JetStream pull heartbeat missed; pulling again", "err", err)
	default:
		s.b.log.Warn("JetStream consume error", "err", err)
	}
}

func (s *jsSource) restart(ctx context.Context) error {
	s.stopConsuming(false) // its consumer is gone: nothing to hand back
	if err := s.setup(ctx); err != nil {
		return err
	}
	return s.consume()
}

func (s *jsSource) tick() {}

func (s *jsSource) stop() { s.stopConsuming(true) }

// stopConsuming ends the Consume; with drain, the messages nats.go has
// buffered still reach handle (which Naks them once the Bridge stops), so
// the next relay gets them at once rather than after AckWait.
func (s *jsSource) stopConsuming(drain bool) {
	if s.cc == nil {
		return
	}
	if drain {
		s.cc.Drain()
	} else {
		s.cc.Stop()
	}
	select {
	case <-s.cc.Closed():
	case <-time.After(5 * time.Second):
		s.b.log.Warn("JetStream consumer did not stop within 5s")
	}
	s.cc = nil
}
