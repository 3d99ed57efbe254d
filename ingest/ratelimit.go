package ingest

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxBuckets bounds the buckets kept at once. Callers are the fixed set of
// names in the keys (one, "", without authentication), far fewer; the
// bound only keeps a bug or an unforeseen caller name from growing the map
// without end.
const maxBuckets = 10_000

// rateLimits keeps one token bucket per caller, made on the caller's first
// request.
type rateLimits struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	buckets  map[string]*rate.Limiter // guarded by mu
	overflow *rate.Limiter            // shared by callers beyond maxBuckets
}

func newRateLimits(perSecond float64, burst int) *rateLimits {
	return &rateLimits{
		limit:    rate.Limit(perSecond),
		burst:    burst,
		buckets:  make(map[string]*rate.Limiter),
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// reserve takes n tokens from caller's bucket, all or none. It returns the
// reservation, to be cancelled if the request is refused later on, or how
// long until n tokens are there.
func (l *rateLimits) reserve(caller string, n int, now time.Time) (*rate.Reservation, time.Duration) {
	r := l.bucket(caller, now).ReserveN(now, n)
	if !r.OK() {
		// n > burst: validate keeps Burst ≥ MaxEvents ≥ n, so not reached;
		// refused rather than let through.
		return nil, time.Duration(float64(n) / float64(l.limit) * float64(time.Second))
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return r, 0
}

func (l *rateLimits) bucket(caller string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[caller]; ok {
		return b
	}
	if len(l.buckets) >= maxBuckets {
		// A full bucket is the same as a new one: dropping it forgets nothing.
		for name, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, name)
			}
		}
	}
	if len(l.buckets) >= maxBuckets {
		// Still full: the newcomers share one bucket, stricter than their
		// own would be, never looser.
		return l.overflow
	}
	b := rate.NewLimiter(l.limit, l.burst)
	l.buckets[caller] = b
	return b
}
