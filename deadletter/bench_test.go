package deadletter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// BenchmarkReplay replays 10,000 dead letters to the app queue per
// operation, as "worker dlq replay" does without a rate: the figure that the
// confirm pipelining (many copies in flight) is for.
func BenchmarkReplay(b *testing.B) {
	const n = 10_000
	f := setup(b)
	f.declare()
	seeds := make([]dl, n)
	for i := range seeds {
		seeds[i] = dl{id: fmt.Sprintf("ev-%d", i), typ: "AEvent", attempt: 5}
	}
	in := f.forApp()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := f.ch.QueuePurge(f.queue, false /* noWait */); err != nil {
			b.Fatal(err)
		}
		// Every original was acknowledged: none may come back.
		if left := brokertest.Depth(b, f.dead); left != 0 {
			var got []string
			for _, d := range brokertest.Drain(b, f.dead, left, 300*time.Millisecond) {
				got = append(got, fmt.Sprintf("%s(redelivered=%v,count=%v)", d.MessageId, d.Redelivered, d.Headers["x-delivery-count"]))
			}
			b.Fatalf("iteration %d: %d left in the dead-letter queue after a complete replay (a duplicate): %v", i, left, got)
		}
		for k := range seeds {
			seeds[k].id = fmt.Sprintf("it%d-ev-%d", i, k)
		}
		f.seed(seeds...)
		brokertest.Eventually(b, 2*time.Minute, "seeded", func() bool { return brokertest.Depth(b, f.dead) == n })
		b.StartTimer()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := in.Replay(c, deadletter.ReplayOptions{})
		cancel()
		if err != nil || res.Replayed != n {
			b.Fatalf("replay: %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
