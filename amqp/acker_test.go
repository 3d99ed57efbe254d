package amqp

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fakeBroker settles tags the way RabbitMQ does: a multiple-ack settles every
// outstanding tag up to its own, and a tag that is not outstanding (settled
// before, or never delivered) is a channel error.
type fakeBroker struct {
	mu          sync.Mutex
	outstanding map[uint64]bool
	acked       map[uint64]int
	nacked      map[uint64]int
	frames      int
	err         error
}

func newFakeBroker(n int) *fakeBroker {
	b := &fakeBroker{outstanding: map[uint64]bool{}, acked: map[uint64]int{}, nacked: map[uint64]int{}}
	for i := 1; i <= n; i++ {
		b.outstanding[uint64(i)] = true
	}
	return b
}

func (b *fakeBroker) Ack(tag uint64, multiple bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	if !b.outstanding[tag] {
		b.err = fmt.Errorf("PRECONDITION_FAILED - unknown delivery tag %d", tag)
		return b.err
	}
	for t := range b.outstanding {
		if t == tag || (multiple && t < tag) {
			delete(b.outstanding, t)
			b.acked[t]++
		}
	}
	return nil
}

func (b *fakeBroker) Nack(tag uint64, multiple, requeue bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	if multiple || !b.outstanding[tag] {
		b.err = fmt.Errorf("unexpected nack %d multiple=%v", tag, multiple)
		return b.err
	}
	delete(b.outstanding, tag)
	b.nacked[tag]++
	return nil
}

func TestAckerSettlesEveryTagExactlyOnceInFewFrames(t *testing.T) {
	t.Parallel()
	const n = 5000
	b := newFakeBroker(n)
	a := newAcker(b, maxAckBatch, func(err error) { t.Errorf("acker failed: %v", err) })
	// No timer flushes: the frame count must not depend on how fast this
	// machine runs (a slow, loaded run made ticks ack stragglers one by
	// one). Straggler acks have their own test below.
	a.delay = time.Hour
	for tag := uint64(1); tag <= n; tag++ {
		a.seen(tag)
	}
	// 16 "handlers" settle tags out of order, as concurrent handlers do
	// (shuffled within windows of 32); every 10th is nacked, as a worker
	// does when a hop fails.
	tags := make(chan uint64, n)
	for start := 0; start < n; start += 32 {
		for _, p := range rand.Perm(min(32, n-start)) {
			tags <- uint64(start + p + 1)
		}
	}
	close(tags)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tag := range tags {
				if tag%10 == 0 {
					_ = a.nack(tag, true)
				} else {
					a.ack(tag)
				}
			}
		}()
	}
	wg.Wait()
	a.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		t.Fatal(b.err)
	}
	if len(b.outstanding) != 0 {
		t.Fatalf("%d tags never settled", len(b.outstanding))
	}
	for tag := uint64(1); tag <= n; tag++ {
		if b.acked[tag]+b.nacked[tag] != 1 || (tag%10 == 0) != (b.nacked[tag] == 1) {
			t.Fatalf("tag %d: acked %d nacked %d", tag, b.acked[tag], b.nacked[tag])
		}
	}
	// The 500 nacks go one by one; the 4,500 acks must share frames.
	if b.frames > n/10+n/4 {
		t.Errorf("%d frames for %d deliveries: acks are not batched", b.frames, n)
	}
	t.Logf("%d deliveries settled with %d frames", n, b.frames)
}

func TestAckerDoesNotHoldAcksBehindASlowHandler(t *testing.T) {
	t.Parallel()
	b := newFakeBroker(10)
	a := newAcker(b, ackBatchFor(DefaultPrefetch), nil)
	for tag := uint64(1); tag <= 10; tag++ {
		a.seen(tag)
	}
	for tag := uint64(2); tag <= 10; tag++ { // tag 1 is still in its handler
		a.ack(tag)
	}
	deadline := time.Now().Add(time.Second)
	for {
		b.mu.Lock()
		left := len(b.outstanding)
		b.mu.Unlock()
		if left == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tags still unacked 1s after their handlers finished", left-1)
		}
		time.Sleep(time.Millisecond)
	}
	a.ack(1)
	a.flush()
	if len(b.outstanding) != 0 || b.err != nil {
		t.Fatalf("outstanding %v err %v", b.outstanding, b.err)
	}
}

func TestAckBatchLeavesTheBrokerRoomToSend(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		prefetch int
		want     uint64
	}{{1, 1}, {3, 1}, {16, 4}, {DefaultPrefetch, 16}, {256, 64}, {65535, 64}} {
		if got := ackBatchFor(c.prefetch); got != c.want {
			t.Errorf("ackBatchFor(%d) = %d, want %d", c.prefetch, got, c.want)
		}
	}
}

// With the default prefetch, a full batch is acked at once, without waiting
// for the timer: a batch as large as the prefetch left the broker with
// nothing more to send until the timer fired.
func TestAckerAcksAFullBatchAtOnce(t *testing.T) {
	t.Parallel()
	batch := ackBatchFor(DefaultPrefetch)
	b := newFakeBroker(int(batch))
	a := newAcker(b, batch, nil)
	a.delay = time.Hour // only a full batch can send the ack
	for tag := uint64(1); tag <= batch; tag++ {
		a.seen(tag)
		a.ack(tag)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.outstanding) != 0 || b.frames != 1 {
		t.Fatalf("after %d acks: %d outstanding, %d frames; want 0 and 1", batch, len(b.outstanding), b.frames)
	}
}
