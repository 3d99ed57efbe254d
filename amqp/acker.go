package amqp

import (
	"sync"
	"time"
)

// maxAckBatch bounds how many settled deliveries make an immediate
// multiple-ack; ackDelay is the longest an ack waits for company. One ack
// frame per delivery was the worker's biggest cost (a write syscall each).
const (
	maxAckBatch = 64
	ackDelay    = 2 * time.Millisecond
)

// ackBatchFor is the batch for a consumer's prefetch: a quarter of it, so the
// broker always has room to send more while a batch fills. A batch as large
// as the prefetch stalls the consumer: every delivery out is handled and
// waits for the ack, which then comes only from the ackDelay timer.
func ackBatchFor(prefetch int) uint64 {
	return uint64(min(max(prefetch/4, 1), maxAckBatch))
}

// Settlement states of a delivery tag above the acker's floor.
const (
	tagAckPending = iota + 1 // handled; ack not sent yet
	tagAckSent               // acked on its own (multiple=false)
	tagNacked                // nacked on its own
)

// acker settles one channel's deliveries. Handlers finish out of order, so it
// acks the contiguous run of handled tags with one multiple-ack, and after
// ackDelay acks stragglers above a gap one by one, so a slow handler holding
// the lowest tag does not hold back everyone else's acks. RabbitMQ rejects a
// multiple-ack whose own tag is no longer outstanding (unknown delivery tag,
// channel closed), so a multiple-ack always names a tag that is still
// pending; nacks are always sent on their own.
type acker struct {
	ch    acknowledger
	batch uint64 // settled deliveries that make an immediate multiple-ack

	mu        sync.Mutex
	state     map[uint64]int // tags above floor that are settled
	floor     uint64         // every tag ≤ floor is settled
	last      uint64         // highest ack-pending tag ≤ floor, 0 if none
	sent      uint64         // highest tag covered by a multiple-ack
	highest   uint64         // highest tag seen
	tickFloor uint64         // floor at the previous tick
	timer     *time.Timer
	delay     time.Duration // ackDelay; tests may change it
	err       error         // first failed write; the channel is gone
	onFailed  func(error)
}

// acknowledger is the part of *amqp091.Channel an acker needs.
type acknowledger interface {
	Ack(tag uint64, multiple bool) error
	Nack(tag uint64, multiple, requeue bool) error
}

func newAcker(ch acknowledger, batch uint64, onFailed func(error)) *acker {
	return &acker{ch: ch, batch: batch, state: map[uint64]int{}, onFailed: onFailed, delay: ackDelay}
}

// seen records a delivery tag handed out, before it is settled.
func (a *acker) seen(tag uint64) {
	a.mu.Lock()
	if tag > a.highest {
		a.highest = tag
	}
	a.mu.Unlock()
}

// ack settles tag as handled; the ack frame may follow a little later.
func (a *acker) ack(tag uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(tag, tagAckPending)
	switch {
	case a.floor-a.sent >= a.batch:
		a.flushLocked(false)
	case a.timer == nil:
		// Wait ackDelay for company, even with nothing else in flight: a
		// fast handler is usually just ahead of the broker's next
		// delivery, and flushing then sent one frame per delivery.
		a.timer = time.AfterFunc(a.delay, a.tick)
	}
}

// nack settles tag by sending a nack for it alone, now.
func (a *acker) nack(tag uint64, requeue bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.ch.Nack(tag, false /* multiple */, requeue)
	a.settle(tag, tagNacked)
	return err
}

func (a *acker) settle(tag uint64, how int) {
	if tag <= a.floor {
		return
	}
	if tag == a.floor+1 {
		// The common case, handlers finishing in order: no map entry.
		a.floor++
		if how == tagAckPending {
			a.last = a.floor
		}
		if len(a.state) == 0 {
			return
		}
	} else {
		a.state[tag] = how
	}
	for {
		s, ok := a.state[a.floor+1]
		if !ok {
			return
		}
		delete(a.state, a.floor+1)
		a.floor++
		if s == tagAckPending {
			a.last = a.floor
		}
	}
}

// tick runs ackDelay after an ack that did not flush. Handled tags above a
// gap are acked one by one only when the floor has not moved since the last
// tick: a handler is holding the lowest tag, and waiting for it would hold
// back the prefetch window. While the floor moves, the next multiple-ack
// covers them anyway.
func (a *acker) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timer = nil
	stuck := a.floor == a.tickFloor
	a.tickFloor = a.floor
	a.flushLocked(stuck)
}

// flush sends every pending ack now (before the channel closes).
func (a *acker) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.flushLocked(true)
}

// flushLocked sends the multiple-ack for the contiguous run and, with
// stragglers, single acks for handled tags above the floor.
func (a *acker) flushLocked(stragglers bool) {
	if a.err != nil {
		return
	}
	if a.last > a.sent {
		if err := a.ch.Ack(a.last, true /* multiple */); err != nil {
			a.fail(err)
			return
		}
		a.sent = a.last
	}
	pending := false
	for tag, s := range a.state {
		if s != tagAckPending {
			continue
		}
		if !stragglers {
			pending = true
			break
		}
		if err := a.ch.Ack(tag, false /* multiple */); err != nil {
			a.fail(err)
			return
		}
		a.state[tag] = tagAckSent
	}
	if pending && a.timer == nil {
		a.timer = time.AfterFunc(a.delay, a.tick)
	}
}

func (a *acker) fail(err error) {
	a.err = err
	if a.onFailed != nil {
		a.onFailed(err)
	}
}
