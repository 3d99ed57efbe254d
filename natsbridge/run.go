package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// run publishes what the source delivers until Stop or a fatal error.
func (b *Bridge) run() {
	err := b.loop()
	b.life.Stop() // also after a fatal error: handlers blocked on in give up
	closed := b.src.stop()
	// Until the consume is closed, a handler may still hand a message
	// over (it picks b.in or Stopping at random): give each one back.
drain:
	for {
		select {
		case it := <-b.in:
			b.unsettled(it)
		case <-closed:
			break drain
		case <-b.life.Halted():
			b.log.Warn("stopping without waiting for nats.go's consume to end: messages it still delivers are given back after AckWait")
			break drain
		}
	}
	for len(b.in) > 0 { // only this goroutine receives: this never blocks
		b.unsettled(<-b.in)
	}
	_ = b.nc.FlushTimeout(time.Second) // the Naks of unsettled messages
	b.nc.Close()
	b.log.Info("bridge stopped", "published", b.published.Load(), "rejected", b.rejected.Load(),
		"redelivered", b.redelivered.Load(), "dropped", b.dropped.Load())
	b.life.Finish(err)
}

func (b *Bridge) loop() error {
	var again []item // ModeCore: not confirmed, to be tried again
	failures := 0    // consecutive batches of which nothing was confirmed
	for {
		if b.life.IsStopping() {
			for _, it := range again {
				b.unsettled(it)
			}
			return nil
		}
		batch := again
		again = nil
		if len(batch) == 0 {
			select {
			case it := <-b.in:
				batch = append(batch, it)
			case err := <-b.lost:
				if err := b.recover(err); err != nil {
					return err
				}
				continue
			case <-b.life.Stopping():
				return nil
			}
		}
	fill:
		for len(batch) < b.cfg.Window {
			select {
			case it := <-b.in:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		var confirmed, failed int
		again, confirmed, failed = b.publish(batch)
		b.src.tick()
		var d time.Duration
		if confirmed == 0 && failed > 0 {
			failures++
			// Never a hot loop: a broker refusing everything, or away, is
			// asked again only after a growing pause.
			d = b.cfg.Backoff.Delay(failures - 1)
		} else {
			failures = 0
			if len(again) > 0 {
				// ModeCore: a few refused among confirmed ones get their
				// own pause, or MaxAttempts would be spent in
				// milliseconds.
				d = b.cfg.Backoff.Delay(again[0].attempts - 1)
			}
		}
		if d > 0 && b.pause(d) {
			for _, it := range again {
				b.unsettled(it)
			}
			return nil
		}
	}
}

// publish publishes batch's events and settles each message. It returns
// the messages to try again (ModeCore) and how many were confirmed and not.
func (b *Bridge) publish(batch []item) (again []item, confirmed, failed int) {
	evs := make([]event.Event, 0, len(batch))
	taken := make([]item, 0, len(batch))
	for _, it := range batch {
		if it.err != nil {
			b.reject(it)
			continue
		}
		evs = append(evs, it.ev)
		taken = append(taken, it)
	}
	if len(evs) == 0 {
		return nil, 0, 0
	}
	b.m.InFlight(len(evs))
	defer b.m.InFlight(0)
	ctx, cancel := context.WithTimeout(b.life.HaltContext(), b.cfg.PublishTimeout)
	errs := batchErrs(b.pub.PublishBatch(ctx, evs), len(evs))
	cancel()
	for i, it := range taken {
		if errs[i] == nil {
			confirmed++
			b.confirmed(it)
			continue
		}
		failed++
		if b.notConfirmed(it, errs[i]) {
			it.attempts++
			again = append(again, it)
		}
	}
	return again, confirmed, failed
}

// batchErrs is one error per event from PublishBatch's answer.
func batchErrs(err error, n int) []error {
	errs := make([]error, n)
	if err == nil {
		return errs
	}
	var be *amqp.BatchError
	if errors.As(err, &be) && len(be.Errs) == n {
		return be.Errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func (b *Bridge) confirmed(it item) {
	b.src.settled(it)
	if it.js != nil {
		// Only now may the stream forget it. A lost ack means a
		// redelivery after AckWait, with the same id: at least once.
		if err := it.js.Ack(); err != nil {
			b.log.Debug("ack not sent; the message will be delivered again", "stream_seq", it.seq, "err", err)
		}
	}
	b.m.Published(1)
	b.published.Add(1)
}

// reject sets aside a message that cannot be an event: retrying cannot
// help. In JetStream it is Termed: never delivered again, and still in the
// stream at its sequence for an operator to read.
func (b *Bridge) reject(it item) {
	b.m.Rejected()
	b.rejected.Add(1)
	b.src.settled(it)
	// A subject may be ~4 KB chosen by whoever publishes: shortened, and
	// at most a few lines a second.
	ok, skipped := b.rejectLog.allow()
	if it.js != nil {
		if err := it.js.Term(); err != nil {
			b.log.Warn("term not sent; the message will be delivered (and rejected) again", "stream_seq", it.seq, "err", err)
		}
		if ok {
			b.log.Warn("message set aside (terminated; it stays in the stream): it cannot be an event",
				"stream_seq", it.seq, "msg_subject", truncate(it.subject), "reason", it.err, "not_logged_since", skipped)
		}
		return
	}
	if ok {
		b.log.Warn("message dropped: it cannot be an event", "msg_subject", truncate(it.subject), "reason", it.err,
			"not_logged_since", skipped)
	}
}

// notConfirmed handles a message the broker did not confirm; it reports
// whether to try it again here (ModeCore, attempts left).
func (b *Bridge) notConfirmed(it item, err error) bool {
	if it.js != nil {
		b.src.settled(it)
		if errors.Is(err, amqp.ErrReturned) {
			// Routed to no queue: the broker has no copy, so its next
			// delivery is a plain retry. A nack or a lost confirm may
			// leave one (a nack can follow some queues' acceptance):
			// that delivery counts as a redelivery.
			b.src.(*jsSource).gaveBack(it)
		}
		// Back in the stream, after a pause growing with its deliveries.
		d := b.cfg.Backoff.Delay(int(min(it.delivered, 30)) - 1)
		if nerr := it.js.NakWithDelay(d); nerr != nil {
			b.log.Debug("nak not sent; the message will be delivered again after AckWait", "stream_seq", it.seq, "err", nerr)
		}
		b.m.Retried()
		b.retried.Add(1)
		if it.delivered >= refusedWarnAfter {
			if ok, skipped := b.refusedLog.allow(); ok {
				b.log.Warn("the broker keeps refusing a message: Naked again (it stays in the stream until the broker takes it)",
					"id", truncate(it.ev.ID), "type", it.ev.Type, "stream_seq", it.seq, "delivered", it.delivered, "delay", d,
					"err", err, "not_logged_since", skipped)
			}
		} else {
			b.log.Debug("not confirmed; delivered again later", "id", it.ev.ID, "stream_seq", it.seq, "delay", d, "err", err)
		}
		return false
	}
	if it.attempts+1 < b.cfg.MaxAttempts && !b.life.IsStopping() {
		return true
	}
	b.src.settled(it)
	b.m.Dropped(1)
	b.dropped.Add(1)
	b.log.Error("message dropped: the broker did not confirm it (core NATS cannot hold it for later)",
		"id", it.ev.ID, "type", it.ev.Type, "attempts", it.attempts+1, "err", err)
	return false
}

// unsettled gives back a message taken and not settled when the Bridge
// stops: Naked in JetStream (the next relay takes it at once), lost in core
// NATS.
func (b *Bridge) unsettled(it item) {
	b.src.settled(it)
	if it.js != nil {
		b.src.(*jsSource).gaveBack(it)
		_ = it.js.Nak()
		return
	}
	b.m.Dropped(1)
	b.dropped.Add(1)
}

// recover handles a report on b.lost: a closed connection ends the Bridge;
// a lost consumer is set up again, with backoff, until Stop.
func (b *Bridge) recover(cause error) error {
	if errors.Is(cause, ErrConnectionClosed) {
		return cause
	}
	b.log.Warn("NATS source lost; setting it up again", "err", cause)
	for attempt := 0; ; attempt++ {
		err := b.src.restart(b.life.HaltContext())
		if err == nil {
			b.sourceLost.Store(nil)
			b.log.Info("NATS source set up again")
			return nil
		}
		if errors.Is(err, ErrStreamLost) {
			b.log.Error("JetStream stream lost: the bridge stops", "err", err)
			return err
		}
		// A ClosedHandler report may have found lost full.
		if b.nc.IsClosed() {
			return fmt.Errorf("%w: %v", ErrConnectionClosed, b.nc.LastError())
		}
		b.log.Warn("NATS source not set up; retrying", "err", err, "attempt", attempt+1)
		if b.pause(b.cfg.Backoff.Delay(attempt)) {
			return nil
		}
	}
}

// pause waits d; it reports true when the Bridge stops meanwhile.
func (b *Bridge) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-b.life.Stopping():
		return true
	}
}

// refusedWarnAfter is the delivery count from which a message the broker
// refuses is logged at WARN (rate-limited) rather than Debug.
const refusedWarnAfter = 5

// rateLimit allows a log line at most once per second; allow reports how
// many were skipped since the last one allowed.
type rateLimit struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *rateLimit) allow() (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) >= time.Second {
		n := r.skipped
		r.last, r.skipped = now, 0
		return true, n
	}
	r.skipped++
	return false, 0
}

// maxLogged is how much of a message's subject or id is logged.
const maxLogged = 64

// truncate shortens s for a log line.
func truncate(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:maxLogged], len(s))
}
