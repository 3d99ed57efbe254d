package admin_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/internal/httpserver"
)

// A probe's keep-alive connection must not stay open forever: the server
// closes it after IdleTimeout (shortened here; 30 s by default).
func TestServer_IdleConnectionClosed(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Ready: func() error { return nil }, Logger: quiet(),
		HTTP: httpserver.Config{IdleTimeout: idle}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("/healthz %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}

	// Blocks until the server hangs up (EOF or a reset), or the deadline.
	t0 := time.Now()
	_, err = io.Copy(io.Discard, br)
	took := time.Since(t0)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection still open after %v (IdleTimeout %v)", took, idle)
	}
	t.Logf("IdleTimeout %v: idle connection closed after %v", idle, took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("idle connection closed after %v, want before 3 s (IdleTimeout %v)", took, idle)
	}
}
