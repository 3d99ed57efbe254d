package amqp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

const dialPassword = "S3cretPW"

// peer is a local listener that accepts and then does what serve says;
// closed receives once per connection when the client closed its end.
type peer struct {
	addr     string
	accepted chan struct{}
	closed   chan struct{}
}

// startPeer listens on 127.0.0.1; serve runs per connection (nil: say
// nothing), then the peer reads until the client closes.
func startPeer(t *testing.T, ln net.Listener, serve func(net.Conn)) *peer {
	t.Helper()
	p := &peer{addr: ln.Addr().String(), accepted: make(chan struct{}, 16), closed: make(chan struct{}, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted <- struct{}{}
			go func() {
				defer c.Close()
				if serve != nil {
					serve(c)
				}
				_, _ = io.Copy(io.Discard, c) // returns when the client closes
				p.closed <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return p
}

func silentPeer(t *testing.T, serve func(net.Conn)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startPeer(t, ln, serve)
}

// waitClosed waits for the peer to see n connections closed by the client.
func (p *peer) waitClosed(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-p.closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("the peer saw %d of %d connections closed by the client", i, n)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(fds)
}

// noLeaks polls until goroutines and open files are back to the baseline.
func noLeaks(t *testing.T, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: goroutines %d (baseline %d), open files %d (baseline %d)\n%s", g, goroutines, f, fds, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkNoPassword(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "S3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestDial_SilentPeerTimesOutAndLeaksNothing(t *testing.T) {
	p := silentPeer(t, nil)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	u := fmt.Sprintf("amqp://guest:%s@%s/?connection_timeout=300", dialPassword, p.addr)
	const attempts = 3
	for i := 0; i < attempts; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		c, err := amqp.Dial(ctx, u, "dial-test")
		took := time.Since(start)
		cancel()
		if err == nil {
			_ = c.Close()
			t.Fatal("Dial to a silent peer succeeded")
		}
		if !errors.Is(err, amqp.ErrHandshakeTimeout) || !strings.Contains(err.Error(), "AMQP handshake: no answer within 300ms") {
			t.Errorf("err = %v; want the AMQP handshake's timeout of 300ms", err)
		}
		if !strings.Contains(err.Error(), "connect to amqp://guest:xxxxx@") {
			t.Errorf("err = %v; want it to name the redacted URL", err)
		}
		checkNoPassword(t, err)
		if took > 10*time.Second {
			t.Errorf("Dial took %v with a 300ms handshake timeout", took)
		}
	}
	p.waitClosed(t, attempts)
	noLeaks(t, goroutines, fds)
}

func TestDial_ContextCancelledMidHandshakeClosesTheSocket(t *testing.T) {
	header := make(chan struct{}, 16) // the client sent its protocol header
	p := silentPeer(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 8)); err == nil {
			header <- struct{}{}
		}
	})
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	u := fmt.Sprintf("amqp://guest:%s@%s/", dialPassword, p.addr) // default 10s timeout
	const attempts = 3
	for i := 0; i < attempts; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-header
			cancel()
		}()
		start := time.Now()
		c, err := amqp.Dial(ctx, u, "dial-test")
		took := time.Since(start)
		cancel()
		if err == nil {
			_ = c.Close()
			t.Fatal("Dial to a silent peer succeeded")
		}
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "AMQP handshake") {
			t.Errorf("err = %v; want context.Canceled during the AMQP handshake", err)
		}
		checkNoPassword(t, err)
		if took >= amqp.DefaultHandshakeTimeout {
			t.Errorf("Dial took %v: it waited for the handshake timeout, not the context", took)
		}
	}
	p.waitClosed(t, attempts)
	noLeaks(t, goroutines, fds)
}

func TestDial_PeerThatIsNotABroker(t *testing.T) {
	cases := []struct {
		name  string
		serve func(net.Conn)
	}{
		{"answers HTTP", func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }},
		{"sends a frame header then stalls", func(c net.Conn) { _, _ = c.Write([]byte{1, 0, 0, 0, 0, 0, 200}) }},
		{"closes at once", func(c net.Conn) { _ = c.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := silentPeer(t, tc.serve)
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)
			u := fmt.Sprintf("amqp://guest:%s@%s/?connection_timeout=2000", dialPassword, p.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := amqp.Dial(ctx, u, "dial-test")
			if err == nil {
				_ = c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), "AMQP handshake") {
				t.Errorf("err = %v; want it to name the AMQP handshake", err)
			}
			checkNoPassword(t, err)
			p.waitClosed(t, 1)
			noLeaks(t, goroutines, fds)
		})
	}
}

func TestDial_ConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = amqp.Dial(context.Background(), fmt.Sprintf("amqp://guest:%s@%s/", dialPassword, addr), "dial-test")
	if err == nil || !strings.Contains(err.Error(), "TCP connect") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v; want connection refused at the TCP connect", err)
	}
	checkNoPassword(t, err)
}

// selfSigned writes a certificate for 127.0.0.1 to dir and returns it with
// its PEM file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "eventfleet dial test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

func TestDial_TLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	tlsPeer := func(t *testing.T) *peer {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		return startPeer(t, ln, nil)
	}
	cases := []struct {
		name  string
		peer  func(t *testing.T) *peer
		query string
		want  string
	}{
		{"unknown CA fails verification", tlsPeer, "", "amqp: TLS handshake failed: the broker's certificate is not signed by a trusted CA (tls: failed to verify certificate: x509"},
		{"silent after TLS", tlsPeer, "&cacertfile=" + url.QueryEscape(caFile), "AMQP handshake: no answer within 300ms"},
		{"silent TCP peer", func(t *testing.T) *peer { return silentPeer(t, nil) }, "", "TLS handshake: no answer within 300ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.peer(t)
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)
			u := fmt.Sprintf("amqps://guest:%s@%s/?connection_timeout=300%s", dialPassword, p.addr, tc.query)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := amqp.Dial(ctx, u, "dial-test")
			if err == nil {
				_ = c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want %q", err, tc.want)
			}
			checkNoPassword(t, err)
			p.waitClosed(t, 1)
			noLeaks(t, goroutines, fds)
		})
	}
}

// withQuery adds k=v to the broker URL u.
func withQuery(t *testing.T, u, k, v string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String()
}

func TestDial_Broker(t *testing.T) {
	t.Parallel()
	u := withQuery(t, brokertest.URL(t), "connection_timeout", "500")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := amqp.Dial(ctx, u, "eventfleet-dial-test")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := c.Config.Heartbeat; got != amqp.DefaultHeartbeat {
		t.Errorf("heartbeat = %v, want %v", got, amqp.DefaultHeartbeat)
	}
	// The handshake deadline must not outlive the handshake.
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	select {
	case err := <-closed:
		t.Fatalf("the connection closed after the handshake: %v", err)
	case <-time.After(2 * time.Second):
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("Channel after the handshake timeout passed: %v", err)
	}
	_ = ch.Close()
}

func TestDial_BrokerRefusesTheLogin(t *testing.T) {
	t.Parallel()
	p, err := url.Parse(brokertest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p.User = url.UserPassword("guest", dialPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := amqp.Dial(ctx, p.String(), "eventfleet-dial-test")
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial with a wrong password succeeded")
	}
	if !errors.Is(err, amqp.ErrAccessRefused) || !strings.Contains(err.Error(), "AMQP handshake: 403") {
		t.Errorf("err = %v; want ErrAccessRefused, the broker's 403 during the AMQP handshake", err)
	}
	checkNoPassword(t, err)
}

// recordingConn keeps the first bytes read through it.
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	read []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if len(c.read) < 4096 {
		c.read = append(c.read, p[:n]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.read)
}

// The socket hook sits below TLS, the inbound hook above it: inbound reads
// what the broker said in plaintext.
func TestDial_HooksWrapBelowAndAboveTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	const answer = "HTTP/1.1 400 Bad Request\r\n\r\n"
	p := startPeer(t, ln, func(c net.Conn) { _, _ = c.Write([]byte(answer)) })
	u := fmt.Sprintf("amqps://guest:%s@%s/?connection_timeout=2000&cacertfile=%s", dialPassword, p.addr, url.QueryEscape(caFile))
	var sock, in *recordingConn
	_, err = amqp.DialWithHooks(context.Background(), u,
		func(c net.Conn) net.Conn { sock = &recordingConn{Conn: c}; return sock },
		func(c net.Conn) net.Conn { in = &recordingConn{Conn: c}; return in })
	if err == nil || !strings.Contains(err.Error(), "AMQP handshake") {
		t.Fatalf("err = %v; want the AMQP handshake to fail on the HTTP answer", err)
	}
	if sock == nil || in == nil {
		t.Fatal("a hook was not called")
	}
	if got := in.bytes(); !strings.HasPrefix(string(got), "HTTP/1.1") {
		t.Errorf("inbound read %q; want the peer's plaintext answer", got)
	}
	if got := sock.bytes(); len(got) == 0 || got[0] != 0x16 || strings.Contains(string(got), "HTTP/1.1") {
		t.Errorf("the socket hook read %.40q; want TLS records only", got)
	}
	p.waitClosed(t, 1)
}
