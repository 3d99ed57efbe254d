package brokertest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy between clients and the test broker, for cutting
// connections without touching the shared broker.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refuse  bool
	stopped bool
	open    chan struct{} // closed while bytes flow; see Partition
	quit    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// NewProxy starts a proxy to the test broker and returns it; URL gives the
// AMQP URL through it. It stops at cleanup.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatalf("parse broker URL: %v", err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5672")
	}
	return NewProxyTo(t, host)
}

// NewProxyTo starts a proxy to target (host:port), a server other than the
// broker (the tests' Redis); Addr is where to connect. It stops at cleanup.
func NewProxyTo(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{},
		open: make(chan struct{}), quit: make(chan struct{})}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the broker URL with the proxy as host.
func (p *Proxy) URL(t testing.TB) string {
	u, _ := url.Parse(URL(t))
	u.Host = p.ln.Addr().String()
	return u.String()
}

// Cut closes every open connection through the proxy.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// SetRefuse makes the proxy close new connections at once (broker "down").
func (p *Proxy) SetRefuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// Partition stops every byte in both directions, on open connections and on
// new ones (which are accepted), without closing anything: a silent network
// partition. What is sent meanwhile waits in the sockets' buffers, as TCP
// retransmission would deliver it, until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default:
	}
}

// Heal ends a Partition: the held bytes flow again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// flowing waits while the proxy is partitioned; false means it was closed.
func (p *Proxy) flowing() bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		return true
	case <-p.quit:
		return false
	}
}

// Close stops the proxy and cuts all connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.quit)
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		if !p.track(in) || !p.track(out) {
			_ = in.Close()
			_ = out.Close()
			return
		}
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			p.copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.untrack(dst)
			p.untrack(src)
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// copy is io.Copy that holds the bytes while the proxy is partitioned.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for p.flowing() {
		n, err := src.Read(buf)
		// A read that was waiting when the partition began delivers
		// nothing until the partition ends.
		if n > 0 && (!p.flowing() || writeAll(dst, buf[:n]) != nil) {
			return
		}
		if err != nil {
			return
		}
	}
}

func writeAll(w net.Conn, b []byte) error {
	_, err := w.Write(b)
	return err
}
