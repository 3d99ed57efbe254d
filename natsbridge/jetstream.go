package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventfleet/eventfleet/bridge"
	"github.com/eventfleet/eventfleet/event"
)

// jsSource is a durable pull consumer on Stream: explicit acks, at most
// Window messages unacked (MaxAckPending), so the stream holds what the
// broker cannot take yet instead of the Bridge's memory.
type jsSource struct {
	b  *Bridge
	js jetstream.JetStream // written by start, read-only afterwards
	// created is the stream's creation time, seen by start: part of the
	// ids (SeqID), and a stream created since (deleted and made again)
	// stops the Bridge. Written by start, read-only afterwards.
	created time.Time

	// mu guards cons and cur, written by start and restart (Start's
	// goroutine, then run's) and read by nats.go's goroutines (the
	// reconnect handler, the heartbeat check).
	mu   sync.Mutex
	cons jetstream.Consumer
	cur  *consumption

	// held are the messages taken and not settled, by consumer sequence:
	// the keeper tells the server they are in progress, so that none is
	// delivered again while it waits behind a batch or a pause. Written by
	// handle (nats.go's goroutine) and settled (run's).
	heldMu sync.Mutex
	held   map[uint64]jetstream.Msg
	quit   chan struct{} // closes the keeper; closed by stop

	// naked are the stream sequences this relay Naked knowing the broker
	// has no copy (never published as it stopped, or returned as
	// unroutable): their next delivery is a retry, not a redelivery that
	// may duplicate. Written
	// by run (gaveBack) and handle; guarded by heldMu.
	naked map[uint64]struct{}

	badID atomic.Bool // a Nats-Msg-Id that cannot be an event id was logged
}

// consumption is one Consume of the consumer; stopped says the Bridge
// ended it, so that its Closed is no loss.
type consumption struct {
	cc      jetstream.ConsumeContext
	stopped atomic.Bool
}

// Errors of the JetStream source.
var errConsumeEnded = errors.New("the JetStream consume ended by itself")

func (s *jsSource) start(ctx context.Context) error {
	js, err := jetstream.New(s.b.nc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJetStream, err)
	}
	s.js = js
	s.held = map[uint64]jetstream.Msg{}
	s.naked = map[uint64]struct{}{}
	s.quit = make(chan struct{})
	if err := s.setup(ctx, true); err != nil {
		return err
	}
	if err := s.consume(); err != nil {
		return err
	}
	go s.keep()
	return nil
}

// setup makes sure of the stream and creates or updates the durable
// consumer. Only at the first Start may the stream be created: a stream
// made again later restarts its sequences at 1, so new messages would get
// ids <stream>:<seq> that the fleet's inboxes already saw and drop as
// duplicates. A stream gone (or made again) under a running Bridge is
// ErrStreamLost, which ends it. Only APIs of nats-server 2.9 are used: one
// filter subject, no consumer actions.
func (s *jsSource) setup(ctx context.Context, first bool) error {
	b := s.b
	ctx, cancel := context.WithTimeout(ctx, 2*b.cfg.ConnectTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, b.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && !first:
		return fmt.Errorf("%w: stream %s no longer exists, and what it held with it; this relay stops rather than make a new one under its feet (a relay started again creates it if missing: its ids carry the new stream's creation time, so they do not repeat)",
			ErrStreamLost, b.cfg.Stream)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     b.cfg.Stream,
			Subjects: []string{b.cfg.Subject},
			Storage:  jetstream.FileStorage,
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			st, err = s.js.Stream(ctx, b.cfg.Stream) // another relay made it meanwhile
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
	created := st.CachedInfo().Created
	if first {
		s.created = created
	} else if !created.Equal(s.created) {
		return fmt.Errorf("%w: stream %s was deleted and created again (at %s): its sequences restarted; restart the relay, whose ids then carry the new stream's creation time (publishers' Nats-Msg-Id must not repeat either)",
			ErrStreamLost, b.cfg.Stream, created.UTC().Format(time.RFC3339))
	}
	want := jetstream.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		Description:   "eventfleet relay: publishes " + b.cfg.Subject + " to RabbitMQ",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.Window,
		FilterSubject: b.cfg.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	old, err := s.js.Consumer(ctx, b.cfg.Stream, b.cfg.Consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if first {
			b.log.Info("creating the durable consumer, which does not exist: it delivers the stream from its beginning (DeliverAll)")
		} else {
			b.log.Warn("creating the durable consumer again, which was deleted: it delivers the WHOLE stream again from its beginning (DeliverAll); ids are kept, so the fleet's inboxes drop the copies")
		}
	case err == nil:
		s.noteChanges(old.CachedInfo().Config, want)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, want)
	if err != nil {
		return fmt.Errorf("%w: durable consumer %s on stream %s (its filter must be within the stream's subjects): %v",
			ErrJetStream, b.cfg.Consumer, b.cfg.Stream, err)
	}
	s.mu.Lock()
	s.cons = cons
	s.mu.Unlock()
	return nil
}

// noteChanges warns when this relay's settings change an existing
// consumer's: relays sharing a durable consumer share its AckWait and
// MaxAckPending, and the last one started wins.
func (s *jsSource) noteChanges(have, want jetstream.ConsumerConfig) {
	var changed []any
	if have.AckWait != want.AckWait {
		changed = append(changed, "ack_wait_was", have.AckWait.String(), "ack_wait", want.AckWait.String())
	}
	if have.MaxAckPending != want.MaxAckPending {
		changed = append(changed, "max_ack_pending_was", have.MaxAckPending, "max_ack_pending", want.MaxAckPending)
	}
	if have.FilterSubject != want.FilterSubject {
		changed = append(changed, "filter_subject_was", have.FilterSubject, "filter_subject", want.FilterSubject)
	}
	if len(changed) > 0 {
		s.b.log.Warn("updating the durable consumer, configured otherwise: every relay sharing it now works with these settings (MaxAckPending is shared by all of them); give relays of one consumer the same PUBLISH_WINDOW and NATS_ACK_WAIT",
			changed...)
	}
}

func (s *jsSource) consume() error {
	b := s.b
	s.mu.Lock()
	cons := s.cons
	s.mu.Unlock()
	c := &consumption{}
	// A message over the byte limit could never be pulled: the limit is
	// at least the largest message the server accepts.
	limit := max(b.cfg.WindowBytes, int(b.nc.MaxPayload()))
	cc, err := cons.Consume(s.handle,
		jetstream.PullMaxMessagesWithBytesLimit(b.cfg.Window, limit),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { s.onError(cons, err) }))
	if err != nil {
		return fmt.Errorf("%w: consume: %v", ErrJetStream, err)
	}
	c.cc = cc
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	// nats.go ends a Consume on some server errors (a consumer deleted
	// while the connection was down ends it with a bad request) and only
	// tells the error handler: any end the Bridge did not ask for is a
	// lost source.
	go func() {
		<-cc.Closed()
		if !c.stopped.Load() && !b.life.IsStopping() {
			b.report(errConsumeEnded)
		}
	}()
	b.log.Info("consuming the JetStream stream: at least once (acked after the broker's confirm)",
		"ack_wait", b.cfg.AckWait.String(), "max_ack_pending", b.cfg.Window, "pull_max_bytes", limit)
	return nil
}

// SeqID is the event id of the message at seq of the stream named stream,
// created at created, for a message without a Nats-Msg-Id:
// <stream>:<seq>@<created, Unix milliseconds>. The creation time tells one
// incarnation of a stream from the next: a stream deleted and made again
// (by an operator, or by a relay restarted after ErrStreamLost) restarts
// its sequences at 1, and without it the new messages would get ids the
// fleet's inboxes already saw, and be dropped as duplicates.
func SeqID(stream string, created time.Time, seq uint64) string {
	return fmt.Sprintf("%s:%d@%d", stream, seq, created.UnixMilli())
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
	seqID := SeqID(meta.Stream, s.created, meta.Sequence.Stream)
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		id = seqID
	}
	s.heldMu.Lock()
	_, retry := s.naked[meta.Sequence.Stream]
	delete(s.naked, meta.Sequence.Stream)
	s.heldMu.Unlock()
	if meta.NumDelivered > 1 && !retry {
		b.m.Redelivered()
		b.redelivered.Add(1)
		b.log.Info("message delivered again: it may reach the broker twice, with the same id",
			"id", truncate(id), "stream_seq", meta.Sequence.Stream, "delivered", meta.NumDelivered)
	}
	typ := subjectType(b.prefix, msg.Subject())
	ev, err := bridge.Event(typ, msg.Data(), id)
	if errors.Is(err, event.ErrInvalidID) && id != seqID {
		// The body and type are fine; only the publisher's id cannot be
		// an event id. The stream's place is as stable.
		if !s.badID.Swap(true) {
			b.log.Warn("a Nats-Msg-Id cannot be an event id (over 255 bytes, or control characters): such messages get the id <stream>:<seq> instead (logged once)",
				"msg_id", truncate(id), "id", seqID, "reason", err)
		}
		ev, err = bridge.Event(typ, msg.Data(), seqID)
	}
	if err == nil {
		bridge.From(&ev, "jetstream:"+b.cfg.Stream)
	}
	it := item{ev: ev, err: err, subject: msg.Subject(), js: msg, seq: meta.Sequence.Stream, cseq: meta.Sequence.Consumer,
		delivered: meta.NumDelivered, size: len(msg.Data())}
	s.heldMu.Lock()
	s.held[it.cseq] = msg
	s.heldMu.Unlock()
	select {
	case b.in <- it:
	case <-b.life.Stopping():
		s.settled(it)
		s.gaveBack(it)
		_ = msg.Nak()
	}
}

// settled forgets a message once it is acked, Naked or Termed.
func (s *jsSource) settled(it item) {
	s.heldMu.Lock()
	delete(s.held, it.cseq)
	s.heldMu.Unlock()
}

// gaveBack notes a message Naked before it was published.
func (s *jsSource) gaveBack(it item) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if len(s.naked) >= 4*s.b.cfg.Window {
		// Sequences Naked and then deleted from the stream never come
		// back: bounded, at worst a retry is counted as a redelivery.
		clear(s.naked)
	}
	s.naked[it.seq] = struct{}{}
}

// keep tells the server, every third of AckWait, that the messages held
// are in progress: they wait in b.in behind the batch being published and
// the pause after a failure, which together may exceed AckWait. A relay
// that dies stops telling, and they are delivered again after AckWait.
func (s *jsSource) keep() {
	t := time.NewTicker(max(s.b.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.heldMu.Lock()
		msgs := make([]jetstream.Msg, 0, len(s.held))
		for _, m := range s.held {
			msgs = append(msgs, m)
		}
		s.heldMu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // after a settle: ErrMsgAlreadyAckd, harmless
		}
	}
}

func (s *jsSource) onError(cons jetstream.Consumer, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		s.b.report(err)
	case errors.Is(err, jetstream.ErrConnectionClosed):
		// The connection's ClosedHandler reports it.
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		// nats.go pulls again by itself, but never learns that the
		// consumer is gone: ask.
		s.b.log.Debug("JetStream pull heartbeat missed; checking the consumer", "err", err)
		go s.check(cons)
	default:
		s.b.log.Warn("JetStream consume error", "err", err)
	}
}

// reconnected checks the consumer after nats.go reconnected: one deleted
// meanwhile is never reported by Consume.
func (s *jsSource) reconnected() {
	s.mu.Lock()
	cons := s.cons
	s.mu.Unlock()
	if cons != nil {
		go s.check(cons)
	}
}

// check reports the source lost when cons no longer exists.
func (s *jsSource) check(cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(s.b.life.HaltContext(), s.b.cfg.ConnectTimeout)
	defer cancel()
	if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		s.b.report(fmt.Errorf("consumer %s: %w", s.b.cfg.Consumer, err))
	}
}

func (s *jsSource) restart(ctx context.Context) error {
	s.stopConsuming(false) // its consumer is gone: nothing to hand back
	if err := s.setup(ctx, false); err != nil {
		return err
	}
	return s.consume()
}

func (s *jsSource) tick() {}

func (s *jsSource) stop() <-chan struct{} {
	close(s.quit)
	return s.stopConsuming(true)
}

// stopConsuming ends the Consume and returns its Closed; with drain, the
// messages nats.go has buffered still reach handle (which Naks them once
// the Bridge stops), so the next relay gets them at once rather than after
// AckWait.
func (s *jsSource) stopConsuming(drain bool) <-chan struct{} {
	s.mu.Lock()
	c := s.cur
	s.cur = nil
	s.mu.Unlock()
	if c == nil {
		return closedChan
	}
	c.stopped.Store(true)
	if drain {
		c.cc.Drain()
		return c.cc.Closed()
	}
	c.cc.Stop()
	select {
	case <-c.cc.Closed():
	case <-time.After(5 * time.Second):
		s.b.log.Warn("JetStream consumer did not stop within 5s")
	}
	return c.cc.Closed()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
