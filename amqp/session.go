package amqp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/metrics"
)

func (p *Publisher) connect(ctx context.Context) (*pubSession, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var sock *corkConn
	url, _ := p.nodes.current()
	conn, err := dial(dctx, url, dialOptions{
		name:      p.cfg.Name,
		tls:       p.cfg.TLS,
		heartbeat: p.cfg.Heartbeat,
		wrapSocket: func(c net.Conn) net.Conn {
			sock = &corkConn{Conn: c}
			return sock
		},
	})
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	switch {
	case err != nil:
	case p.cfg.role == metrics.RoleHops:
		// A Worker's hops go to the app's own exchange: declare it and its
		// bindings here too, not only on the consuming connection, so a
		// deleted one is back before the hop is published again.
		err = p.declareOwn(conn)
	case p.cfg.Topology == TopologyPassive:
		err = checkDomain(ch, p.cfg.Exchange, !p.cfg.SendOnly /* unrouted: its copies go there */)
	case p.cfg.SendOnly:
		err = declareExchange(ch, p.cfg.Exchange)
	default:
		// An unrouted queue kept with its own group size is as good as one
		// created with it; said once, as a Worker says it of its queues.
		var kept []string
		kept, err = declareDomain(conn, ch, p.cfg.Exchange, p.cfg.QuorumInitialGroupSize)
		if len(kept) > 0 && !p.toldKeptSize {
			p.toldKeptSize = true
			logKeptGroupSize(p.log, kept, p.cfg.QuorumInitialGroupSize)
		}
	}
	if err == nil {
		err = ch.Confirm(false /* noWait */)
	}
	if r := p.refusal(); err == nil && r != nil {
		// The broker refused a publish on an earlier connection: being
		// connected says nothing about whether it takes them now.
		err = probe(conn, r)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Buffers hold more than the window, so the client's reader never waits
	// on us (amqp091-go drops a notification that waits longer than 5s).
	// The writer's queue holds every message in flight: Window of them, plus
	// as many copies for the unrouted queue.
	n := 2*p.cfg.Window + 16
	s := &pubSession{
		p:         p,
		conn:      conn,
		sock:      sock,
		ch:        ch,
		pending:   map[uint64]*pending{},
		queue:     make(chan *pending, n),
		dead:      make(chan struct{}),
		unblocked: make(chan struct{}),
	}
	close(s.unblocked)
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	returns := ch.NotifyReturn(make(chan amqp091.Return, n))
	blocked := conn.NotifyBlocked(make(chan amqp091.Blocking, 4))
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	chClosed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	go s.loop(confirms, returns, blocked, closed, chClosed)
	go s.writer()
	return s, nil
}

// pending is one message awaiting its confirm.
type pending struct {
	exchange, key string
	msg           amqp091.Publishing
	keepUnrouted  bool
	returned      *amqp091.Return
	unrouted      bool // kept in the unrouted queue; set before done is sent
	done          chan error
	slots         chan struct{} // the window slot to give back; nil if none was taken
	once          sync.Once
}

// finish resolves the record once: gives the window slot back and tells the
// caller.
func (r *pending) finish(err error) {
	r.once.Do(func() {
		if r.slots != nil {
			<-r.slots
		}
		r.done <- err
	})
}

// pubSession is one connection and confirm-mode channel.
type pubSession struct {
	p    *Publisher
	conn *amqp091.Connection
	sock *corkConn // conn's socket; only the writer corks it
	ch   *amqp091.Channel

	// queue feeds the writer goroutine, the only one that publishes on ch.
	// One writer keeps "next sequence number" and the publish in order
	// without a lock, and it publishes back to back as a hand-written loop
	// does: with a mutex, 256 callers handed the channel to each other with
	// a goroutine switch per message.
	queue chan *pending

	pmu     sync.Mutex
	pending map[uint64]*pending
	closed  bool
	err     error
	refused *refusal // why the broker closed the session, if it refused a publish

	dead      chan struct{}
	bmu       sync.Mutex
	unblocked chan struct{} // closed while the broker is not blocking us
}

func (s *pubSession) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

func (s *pubSession) cause() error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.err
}

// publish hands rec to the writer, which registers it under its sequence
// number and sends it; rec.done tells its fate. errConnLost means the session
// is gone and the caller should try the next one.
func (s *pubSession) publish(ctx context.Context, rec *pending) error {
	// A blocked connection (memory or disk alarm) stops reading our socket;
	// writing now would block without regard to ctx. Wait here instead.
	s.bmu.Lock()
	unblocked := s.unblocked
	s.bmu.Unlock()
	select {
	case <-unblocked:
	default:
		select {
		case <-unblocked:
		case <-s.dead:
			err := s.lost(rec)
			rec.finish(err)
			return err
		case <-ctx.Done():
			rec.finish(nil) // never sent: just give the slot back
			return fmt.Errorf("broker is blocking publishers (resource alarm): %w", ctx.Err())
		}
	}

	select {
	case s.queue <- rec:
	default:
		select {
		case s.queue <- rec:
		case <-s.dead:
			err := s.lost(rec)
			rec.finish(err)
			return err
		}
	}
	if s.isDead() {
		// The writer may have drained the queue and gone before rec
		// arrived; nothing will send or confirm it on this session now.
		// (finish is once: a rec already resolved keeps its outcome.)
		rec.finish(s.lost(rec))
	}
	return nil
}

// shutdown marks the session dead and hands every unconfirmed message back to
// its caller for republishing on the next session; when the broker closed it
// for refusing a publish, those the refusal covers fail with it instead:
// publishing them again would be refused the same way.
func (s *pubSession) shutdown(cause error) {
	r := publishRefusal(cause)
	if r != nil {
		cause = r.err
		r.main = r.known && r.exchange == s.p.mainExchange()
	}
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		return
	}
	s.closed = true
	s.err = cause
	s.refused = r
	recs := s.pending
	s.pending = map[uint64]*pending{}
	s.pmu.Unlock()
	if r != nil {
		// Before dead closes: a caller that sees the session dead must
		// find the refusal on the Publisher too (see Publisher.session).
		s.p.refuse(r)
	}
	close(s.dead)
	for _, rec := range recs {
		rec.finish(s.lost(rec))
	}
	go func() { _ = s.conn.Close() }()
}

// lost is the fate of rec, unconfirmed on a dead session: the broker's
// refusal when it covers rec, else errConnLost (publish it again on the
// next session).
func (s *pubSession) lost(rec *pending) error {
	s.pmu.Lock()
	r := s.refused
	s.pmu.Unlock()
	if r != nil && r.covers(rec.exchange, rec.key) {
		return r.err
	}
	return errConnLost
}

// close ends the session on purpose.
func (s *pubSession) close() {
	_ = s.conn.Close()
	<-s.dead
}
