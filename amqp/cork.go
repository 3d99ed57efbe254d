package amqp

import (
	"net"
	"sync"
)

// corkMax is how many bytes a corked socket holds before it writes anyway.
// 64 KiB is about a hundred 512-byte publishes: enough that the per-write
// cost vanishes, small enough that the broker starts on a burst early.
const corkMax = 64 << 10

// corkConn is the Publisher's socket. amqp091-go flushes after every publish,
// so a hand-written loop makes one write(2) per message, the largest item in
// the client's CPU (docs/design.md, "Client costs measured"), and the broker
// then reads one small segment per message too. The Publisher's writer goroutine knows
// when more messages are already queued behind the one it is sending: it
// corks the socket for the burst, the client's flushes land in a buffer, and
// uncork sends them in one write. Nothing waits for a timer: a burst is only
// what is queued at that moment, so a lone publish goes out at once.
//
// Confirms, not writes, decide a message's fate: a buffered write that later
// fails closes the socket, the client sees the connection die, and every
// unconfirmed message is republished on the next connection.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    []byte
	err    error // sticky: the first failed write; later writes fail too
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > corkMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= corkMax { // a large body frame: no point copying it
			n, err := c.Conn.Write(p)
			if err != nil {
				c.fail(err)
			}
			return n, err
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// cork holds writes until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was held, in one write, and stops holding.
func (c *corkConn) uncork() {
	c.mu.Lock()
	c.corked = false
	_ = c.flushLocked() // a failure closed the socket: the session ends
	c.mu.Unlock()
}

func (c *corkConn) flushLocked() error {
	if c.err != nil || len(c.buf) == 0 {
		return c.err
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.fail(err)
	}
	return err
}

// fail records a write error and closes the socket, so the client's reader
// fails at once and the session ends (held writes are lost with it, and
// their messages, unconfirmed, are sent again on the next connection).
func (c *corkConn) fail(err error) {
	c.err = err
	_ = c.Conn.Close()
}
