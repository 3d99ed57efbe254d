package ingest

import (
	"strconv"
	"testing"
	"time"
)

// TestRateLimits_Bounded: the buckets never exceed maxBuckets; full ones
// (the same as new) are dropped to make room, and newcomers beyond the
// bound share one bucket rather than go unlimited.
func TestRateLimits_Bounded(t *testing.T) {
	t.Parallel()
	l := newRateLimits(0.001, 2)
	now := time.Now()
	for i := range maxBuckets {
		if r, _ := l.reserve(strconv.Itoa(i), 1, now); r == nil {
			t.Fatalf("caller %d refused its first event", i)
		}
	}
	if r, _ := l.reserve("late", 2, now); r == nil {
		t.Fatal("the first newcomer beyond the bound was refused")
	}
	if r, _ := l.reserve("later", 1, now); r != nil {
		t.Error("a second newcomer got tokens of its own: the overflow bucket is not shared")
	}
	if n := len(l.buckets); n != maxBuckets {
		t.Fatalf("%d buckets, want %d", n, maxBuckets)
	}
	// An hour on, every bucket is full again: all are dropped for the next.
	if r, _ := l.reserve("next", 1, now.Add(time.Hour)); r == nil {
		t.Fatal("a newcomer after the refill was refused")
	}
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}
