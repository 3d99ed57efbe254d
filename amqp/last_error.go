package amqp

import "sync"

// lastError holds why the latest connect attempt failed or the latest
// connection ended, for health checks: the connection loop writes it, any
// goroutine reads it.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
