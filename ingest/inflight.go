package ingest

import "sync"

// inFlight counts the events admitted across all requests and not yet
// answered by PublishBatch, up to a bound.
type inFlight struct {
	max int

	mu sync.Mutex
	n  int // guarded by mu: written by every request's admit and release
}

// admit takes room for n events, or reports false at once when they do not
// fit: a request never waits for room, its client retries later.
func (f *inFlight) admit(n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n+n > f.max {
		return false
	}
	f.n += n
	return true
}

// release gives back the room of an admit(n).
func (f *inFlight) release(n int) {
	f.mu.Lock()
	f.n -= n
	f.mu.Unlock()
}
