package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential reconnect schedule with full jitter: the n-th wait
// is a random duration in [Min, min(Max, Min·2ⁿ)]. Full jitter spreads a fleet
// of workers that lost the broker at the same moment.
type Backoff struct {
	// Min is the first wait's upper bound. Defaults to 100ms.
	Min time.Duration
	// Max caps every wait. Defaults to 30s.
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// Delay returns the wait before retry number n (0 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	ceil := b.Min
	for i := 0; i < n && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	if ceil <= b.Min {
		return b.Min
	}
	return b.Min + rand.N(ceil-b.Min+1)
}

// Sleep waits for Delay(n) or until ctx ends, and returns ctx.Err() in that case.
func (b Backoff) Sleep(ctx context.Context, n int) error {
	t := time.NewTimer(b.Delay(n))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
