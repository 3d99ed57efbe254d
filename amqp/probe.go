package amqp

import (
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/metrics"
)

// refuse records r, the broker's refusal of a publish, on the Publisher:
// publishes it covers fail at once, and the next connects probe it. With
// StopOnRefusal it stops the Publisher with it, before the publishes it
// refused return: a caller that hears the refusal finds Done closed.
func (p *Publisher) refuse(r *refusal) {
	p.mu.Lock()
	p.refused = r
	p.mu.Unlock()
	if p.cfg.StopOnRefusal {
		p.last.set(r.err)
		p.log.Error("publisher stopped", "err", r.err)
		p.life.Finish(r.err) // run's loop then ends at its Quit
	}
}

// mainExchange is where the Publisher's own publishes go: the domain
// exchange, or for a Worker's hops the app's own exchange.
func (p *Publisher) mainExchange() string {
	if p.cfg.role == metrics.RoleHops {
		return p.cfg.hopsExchange
	}
	return p.cfg.Exchange
}

// refusal is the latest refusal no connect has probed successfully yet.
func (p *Publisher) refusal() *refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// probeKey is the routing key of a probe for a refusal of a whole exchange.
const probeKey = "eventfleet.probe"

// probe asks the broker whether it takes now what it refused (r), without
// publishing anything: a publish inside a transaction is checked for
// permissions and for its exchange as any publish is (measured on 3.10.8),
// and a rollback drops it unrouted. It returns nil when the broker takes
// it, else r's kind of error with the broker's new answer.
func probe(conn *amqp091.Connection, r *refusal) error {
	if !r.known || r.topic || !r.main {
		// Nothing named to ask about; or one routing key refused by topic
		// permissions, or an exchange only some publishes go to, while
		// the others may go through: the session must come back for them.
		// Publish and see.
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	err = ch.Tx()
	if err == nil {
		err = ch.Publish(r.exchange, probeKey,
			false, // mandatory: nothing is routed anyway
			false, // immediate
			amqp091.Publishing{})
	}
	if err == nil {
		err = ch.TxRollback()
	}
	if err == nil {
		_ = ch.Close()
		return nil
	}
	// The broker's close can beat the rollback's reply: the client then
	// answers the rollback itself (504, channel not open), and the reason
	// is on closed.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case e, ok := <-closed:
		if ok && e != nil {
			err = e
		}
	case <-t.C:
	}
	pr := publishRefusal(err)
	switch {
	case pr == nil:
		return err // the connection failed: retried as any connect
	case pr.topic:
		// The exchange takes publishes again; topic permissions refused
		// only the probe's own routing key.
		return nil
	}
	return pr.err
}
