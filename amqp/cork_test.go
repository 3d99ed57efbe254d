package amqp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn records every Write that reaches the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	err    error
	closed bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *countingConn) got() (n int, all []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes), bytes.Join(c.writes, nil)
}

func TestCorkConnHoldsWritesUntilUncork(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under}

	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if n, _ := under.got(); n != 1 {
		t.Fatalf("uncorked write: %d socket writes, want 1 (written at once)", n)
	}

	c.cork()
	for _, s := range []string{"bb", "ccc", "dddd"} {
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("corked write %q = %d, %v", s, n, err)
		}
	}
	if n, _ := under.got(); n != 1 {
		t.Fatalf("corked: %d socket writes, want still 1", n)
	}
	c.uncork()
	n, all := under.got()
	if n != 2 || string(all) != "abbcccdddd" {
		t.Fatalf("after uncork: %d writes %q, want 2 writes \"abbcccdddd\" (the burst in one write, in order)", n, all)
	}
	c.uncork() // nothing held: no empty write
	if n, _ := under.got(); n != 2 {
		t.Fatalf("uncork with nothing held wrote: %d writes", n)
	}
}

func TestCorkConnBoundsWhatItHolds(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under}
	c.cork()
	chunk := bytes.Repeat([]byte("x"), corkMax/4+1)
	for range 4 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if n, all := under.got(); n != 1 || len(all) != 3*len(chunk) {
		t.Fatalf("4 writes of %d bytes while corked: %d socket writes of %d bytes, want 1 of %d (held bytes never exceed %d)",
			len(chunk), n, len(all), 3*len(chunk), corkMax)
	}
	big := bytes.Repeat([]byte("y"), corkMax)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	c.uncork()
	n, all := under.got()
	want := append(bytes.Repeat(chunk, 4), big...)
	if n != 3 || !bytes.Equal(all, want) {
		t.Fatalf("after a large write: %d socket writes, bytes equal: %v; want 3 writes, all bytes in order", n, bytes.Equal(all, want))
	}
}

func TestCorkConnFailedFlushClosesAndSticks(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under}
	c.cork()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("broken pipe")
	under.mu.Lock()
	under.err = boom
	under.mu.Unlock()
	c.uncork()
	under.mu.Lock()
	closed := under.closed
	under.mu.Unlock()
	if !closed {
		t.Fatal("a failed flush left the socket open: the client would not notice its held frames were lost")
	}
	if _, err := c.Write([]byte("next")); !errors.Is(err, boom) {
		t.Fatalf("write after a failed flush: %v, want the flush's error", err)
	}
}

// Over a real socket, what is written corked arrives whole and in order.
func TestCorkConnOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &corkConn{Conn: raw}
	var want []byte
	for burst := range 50 {
		c.cork()
		for i := range burst % 7 {
			p := bytes.Repeat([]byte{byte('a' + i)}, 100*burst+i)
			want = append(want, p...)
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		c.uncork()
	}
	_ = c.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("received %d bytes, want %d, in order", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
	}
}
