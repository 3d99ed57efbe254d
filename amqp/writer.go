package amqp

import "time"

// writer publishes what publish queues, until the session dies; then it
// hands back what is still queued.
func (s *pubSession) writer() {
	for {
		select {
		case rec := <-s.queue:
			s.writeBurst(rec)
			continue
		default:
		}
		select {
		case rec := <-s.queue:
			s.writeBurst(rec)
		case <-s.dead:
			for {
				select {
				case rec := <-s.queue:
					rec.finish(s.lost(rec))
				default:
					return
				}
			}
		}
	}
}

// maxBurst bounds how many queued messages go out in one socket write, so
// the first of them is not held back long and the broker gets to work.
const maxBurst = 64

// writeBurst sends rec and what is queued behind it (up to maxBurst) with the
// socket corked, so they leave in one write instead of one each (see
// corkConn). It takes only what is already queued; it never waits for more.
func (s *pubSession) writeBurst(rec *pending) {
	if len(s.queue) == 0 {
		s.write(rec)
		return
	}
	s.sock.cork()
	defer s.sock.uncork()
	s.write(rec)
	for range maxBurst - 1 {
		select {
		case rec = <-s.queue:
			s.write(rec)
		default:
			return
		}
	}
}

// write registers rec under its sequence number and sends it.
func (s *pubSession) write(rec *pending) {
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		rec.finish(s.lost(rec))
		return
	}
	seq := s.ch.GetNextPublishSeqNo()
	s.pending[seq] = rec
	s.pmu.Unlock()
	err := s.ch.Publish(rec.exchange, rec.key,
		true,  // mandatory: an unroutable message comes back as basic.return
		false, // immediate: unsupported by RabbitMQ
		rec.msg)
	if err != nil {
		s.pmu.Lock()
		delete(s.pending, seq)
		s.pmu.Unlock()
		// The channel is closed: when the broker closed it for refusing a
		// publish, the loop is about to say so, and rec must hear it
		// rather than be sent again into the same refusal.
		t := time.NewTimer(time.Second)
		select {
		case <-s.dead:
		case <-t.C:
		}
		t.Stop()
		rec.finish(s.lost(rec))
	}
}
