package amqp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// sessionPhase is how far a session is through its cautious start (see widen).
type sessionPhase int

const (
	phaseNarrow   sessionPhase = iota // one consumer, prefetch 1
	phaseWidening                     // the wide consumer runs; the narrow one's last delivery may still come
	phaseWide                         // the wide consumer alone
)

// workerSession is one consuming connection.
type workerSession struct {
	gen        uint64
	conn       *amqp091.Connection
	ch         *amqp091.Channel
	tag        string
	deliveries <-chan amqp091.Delivery
	cancels    chan string
	closed     chan *amqp091.Error
	dead       chan struct{} // closed when the channel is gone
	deadOnce   sync.Once
	// phase of the session's cautious start (see widen); narrow is the
	// narrow consumer's delivery stream while widening. Only serve touches
	// them.
	phase  sessionPhase
	narrow <-chan amqp091.Delivery
	// held is signalled by a handler loop that holds a delivery for a
	// refused hop (holdRefused), so that serve ends a cautious start the
	// held delivery would otherwise keep narrow for as long as it is held.
	held chan struct{}
	// acks batches this channel's acks (see acker).
	acks *acker
}

func (s *workerSession) markDead() { s.deadOnce.Do(func() { close(s.dead) }) }

func (s *workerSession) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

func (w *Worker) connect(gen uint64) (*workerSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		select {
		case <-w.life.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	url, _ := w.nodes.current()
	conn, err := dial(ctx, url, dialOptions{name: "eventfleet-worker-" + w.cfg.App, tls: w.cfg.TLS, heartbeat: w.cfg.Heartbeat, maxBody: w.cfg.MaxBody})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*workerSession, error) {
		_ = conn.Close()
		return nil, err
	}
	found, err := w.topo.declare(conn)
	if err != nil {
		return fail(err)
	}
	if len(found.legacy) > 0 && !w.toldLegacy {
		w.toldLegacy = true
		w.log.Info("queues created by an earlier version keep dead-lettering through the default exchange; "+
			"retries and dead letters go through the app's exchange (docs/least-privilege.md, Upgrade)",
			"queues", found.legacy, "exchange", w.topo.hops())
	}
	if len(found.keptSize) > 0 && !w.toldKeptSize {
		w.toldKeptSize = true
		logKeptGroupSize(w.log, found.keptSize, w.topo.groupSize)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	// Start cautious: one delivery at a time until the first delivery that
	// was never delivered before (see widen).
	if err := ch.Qos(1, 0, false); err != nil {
		return fail(fmt.Errorf("set prefetch: %w", err))
	}
	host, _ := os.Hostname()
	tag := fmt.Sprintf("eventfleet-%s-%s-%d-%d", w.cfg.App, host, os.Getpid(), gen)
	s := &workerSession{gen: gen, conn: conn, ch: ch, tag: tag, dead: make(chan struct{}), held: make(chan struct{}, 1)}
	s.acks = newAcker(ch, ackBatchFor(w.cfg.Prefetch), func(err error) {
		w.log.Warn("acks failed; the broker will redeliver what was not acked (duplicates possible)",
			"err", err, "connection", gen)
	})
	s.cancels = ch.NotifyCancel(make(chan string, 1))
	s.closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	s.deliveries, err = ch.Consume(w.topo.queue, tag,
		false, // autoAck: we ack after the handler or the hop succeeded
		false, // exclusive: the app's workers share the queue
		false, // noLocal: unsupported by RabbitMQ
		false, // noWait
		nil)
	if err != nil {
		return fail(consumeError(w.topo.queue, err))
	}
	return s, nil
}

// consume serves one session until it ends, then tears it down: on Stop by
// draining its handlers first. It returns why the session ended.
func (w *Worker) consume(s *workerSession) error {
	// Consuming is true before Ready closes: whoever waited for Ready
	// (a readiness probe, a test) must not see false after it.
	w.consumer.Store(true)
	w.mu.Lock()
	close(w.ready)
	w.mu.Unlock()
	w.connm.Up(true)
	sampled := w.startSampling(s)

	cause := w.serve(s)

	sampled()
	w.consumer.Store(false)
	w.connm.Up(false)
	w.mu.Lock()
	w.ready = make(chan struct{})
	w.mu.Unlock()
	if w.life.IsStopping() {
		s.drainAndClose(w)
		return nil
	}
	_ = s.conn.Close()
	return cause
}

// serve feeds deliveries to the handlers until the session ends or the
// Worker is stopping. It returns why the session ended (nil: stopping).
func (w *Worker) serve(s *workerSession) error {
	// Stopping is checked on every turn, so a steady stream of deliveries
	// taken by next's fast path cannot hide it.
	for !w.life.IsStopping() {
		d, err := w.next(s)
		if err == errStopping {
			return nil
		}
		if err != nil {
			return err
		}
		if !w.handOver(s, d) {
			return nil
		}
	}
	return nil
}

// errStopping is next's answer when the Worker stops before a delivery comes.
var errStopping = errors.New("stopping")

// next waits for the session's next delivery, or for it to end (it returns
// why), or for the Worker to stop (errStopping).
func (w *Worker) next(s *workerSession) (amqp091.Delivery, error) {
	// A delivery already waiting is taken with a plain receive; the full
	// select locks every channel it names (as in the Publisher). Not while
	// the narrow consumer's last delivery may still come: a full window must
	// not keep it waiting.
	if s.phase != phaseWidening {
		select {
		case d, ok := <-s.deliveries:
			return w.delivered(s, d, ok)
		default:
		}
	}
	for {
		select {
		case d, ok := <-s.deliveries:
			return w.delivered(s, d, ok)
		case d, ok := <-s.narrow:
			if ok {
				return d, nil
			}
			s.phase, s.narrow = phaseWide, nil // the narrow consumer is done
		case <-s.held:
			// A held delivery's handler returned: it is no crasher, and
			// held it takes the narrow consumer's one slot, so no
			// delivery never delivered before could come to widen.
			if s.phase == phaseNarrow {
				if err := w.widen(s); err != nil {
					return amqp091.Delivery{}, fmt.Errorf("open the prefetch window: %w", err)
				}
			}
		case tag := <-s.cancels:
			s.markDead()
			return amqp091.Delivery{}, w.cancelled(tag)
		case e := <-s.closed:
			s.markDead()
			return amqp091.Delivery{}, closeCause(e)
		case <-w.life.Stopping():
			return amqp091.Delivery{}, errStopping
		}
	}
}

// delivered checks what the current consumer's channel gave: a closed
// channel ends the session; the first delivery never delivered before ends
// its cautious start.
func (w *Worker) delivered(s *workerSession, d amqp091.Delivery, ok bool) (amqp091.Delivery, error) {
	if !ok {
		s.markDead()
		select {
		case e := <-s.closed:
			return d, closeCause(e)
		case tag := <-s.cancels:
			return d, w.cancelled(tag)
		default:
			return d, errors.New("delivery channel closed")
		}
	}
	if s.phase == phaseNarrow && !d.Redelivered {
		if err := w.widen(s); err != nil {
			return d, fmt.Errorf("open the prefetch window: %w", err)
		}
	}
	return d, nil
}

// handOver gives d to a handler loop; it reports false when the Worker
// stopped first.
func (w *Worker) handOver(s *workerSession, d amqp091.Delivery) bool {
	s.acks.seen(d.DeliveryTag)
	// Counted as in flight before it is handed over, so that a Stop right
	// after the hand-over waits for it.
	w.inflight.Add(1)
	w.m.InFlight(1)
	j := job{d: d, gen: s.gen, s: s}
	select {
	case w.jobs <- j: // a handler loop was waiting
		return true
	default:
	}
	select {
	case w.jobs <- j:
		return true
	case <-w.life.Stopping():
		// Not started: it stays unacked and goes back to the head of the
		// queue when drainAndClose closes the channel.
		w.inflight.Done()
		w.m.InFlight(-1)
		return false
	}
}

// cancelled is why a session ended when the broker cancelled its consumer,
// which it does when the queue is deleted. Reconnecting declares it again.
func (w *Worker) cancelled(tag string) error {
	return fmt.Errorf("broker cancelled consumer %s (queue %q deleted?)", tag, w.topo.queue)
}

// widen ends a session's cautious start. A session first consumes with
// prefetch 1: the queue hands back what a previous consumer left unacked
// first, and if one of those crashes workers every time, a crash with one
// delivery in flight returns only it, so the quorum delivery limit counts
// against it alone rather than against every good event that shared a
// prefetch window with it (docs/design.md, "Worker"). At the first delivery that was never
// delivered before, widen opens the full window; so does a delivery held for
// a refused hop (holdRefused), whose handler returned. basic.qos only applies to
// consumers started after it, so widen starts a second consumer with the full
// prefetch and cancels the narrow one; the narrow one's last delivery stays
// ackable on the channel and arrives through s.narrow.
func (w *Worker) widen(s *workerSession) error {
	if err := s.ch.Qos(w.cfg.Prefetch, 0, false); err != nil {
		return err
	}
	tag := s.tag + "-w"
	ds, err := s.ch.Consume(w.topo.queue, tag,
		false, // autoAck
		false, // exclusive
		false, // noLocal
		false, // noWait
		nil)
	if err != nil {
		return err
	}
	if err := s.ch.Cancel(s.tag, false /* noWait */); err != nil {
		return err
	}
	s.phase, s.narrow, s.deliveries, s.tag = phaseWidening, s.deliveries, ds, tag
	return nil
}

// drainAndClose ends a session on Stop: wait for running handlers (they need
// the channel to ack), send their acks, then close. Deliveries the broker sent
// ahead but no handler took stay unacked until the close, which returns them
// to the head of the queue in their order. (A nack with requeue, or
// cancelling the consumer first, would put them at the tail of a quorum
// queue: docs/design.md, "Worker".)
func (s *workerSession) drainAndClose(w *Worker) {
	w.waitInflight()
	s.acks.flush()
	s.markDead()
	_ = s.conn.Close()
}

// waitInflight waits for running handlers, or for a hard stop. After a hard
// stop the handlers' messages stay unacked and go back when the connection
// closes.
func (w *Worker) waitInflight() {
	idle := make(chan struct{})
	go func() { w.inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-w.hardStop().Done():
	}
}
