package redisbridge_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// freezeProxy forwards TCP to a target until frozen: then it holds what it
// reads and forwards nothing, as a half-open connection does (no FIN, no
// RST; writes into it succeed), until thawed.
type freezeProxy struct {
	ln    net.Listener
	mu    sync.Mutex // guards frozen, thaw and conns
	thaw  chan struct{}
	conns []net.Conn
	wg    sync.WaitGroup // the accept loop and the pipes
}

// newFreezeProxy listens on a free local port; everything ends at cleanup.
func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(out, in)
			go p.pipe(in, out)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setFrozen(false)
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// URL is a Redis URL through the proxy.
func (p *freezeProxy) URL() string { return "redis://" + p.ln.Addr().String() + "/0" }

func (p *freezeProxy) setFrozen(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case frozen && p.thaw == nil:
		p.thaw = make(chan struct{})
	case !frozen && p.thaw != nil:
		close(p.thaw)
		p.thaw = nil
	}
}

// gate waits while the proxy is frozen.
func (p *freezeProxy) gate() {
	p.mu.Lock()
	thaw := p.thaw
	p.mu.Unlock()
	if thaw != nil {
		<-thaw
	}
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			return
		}
	}
}
