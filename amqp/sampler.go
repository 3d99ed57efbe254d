package amqp

import (
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/metrics"
)

// startSampling samples the depths of the app's queue, its retry queues and
// its dead-letter queue every SampleInterval on a channel of its own, while
// the session lasts; the returned function stops it. Nothing runs without
// Metrics.
func (w *Worker) startSampling(s *workerSession) (stop func()) {
	if w.m == nil {
		return func() {}
	}
	type queue struct{ name, kind string }
	queues := []queue{{w.topo.queue, metrics.KindApp}, {DeadQueue(w.topo.queue), metrics.KindDeadLetter}}
	for _, d := range w.topo.delays {
		queues = append(queues, queue{RetryQueue(w.topo.queue, d), metrics.KindRetry})
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ch *amqp091.Channel
		defer func() {
			if ch != nil {
				_ = ch.Close()
			}
		}()
		t := time.NewTicker(w.cfg.SampleInterval)
		defer t.Stop()
		for {
			for _, q := range queues {
				if ch == nil || ch.IsClosed() {
					var err error
					if ch, err = s.conn.Channel(); err != nil {
						ch = nil
						break // the session is ending
					}
				}
				// A passive declare reads the depth without creating or
				// changing anything; a missing queue closes the channel,
				// which is reopened for the next one.
				if st, err := ch.QueueDeclarePassive(q.name, false, false, false, false, nil); err == nil {
					w.m.QueueDepth(q.name, q.kind, st.Messages)
				}
			}
			select {
			case <-t.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}
