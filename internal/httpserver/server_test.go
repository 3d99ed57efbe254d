package httpserver_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/httpserver"
)

// start serves h with cfg on a loopback port until the test ends and
// returns its address.
func start(t *testing.T, cfg httpserver.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(h, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// trickle writes b to c one byte every interval, in the background, until
// a write fails or stop is called; stop waits for the writer.
func trickle(c net.Conn, b []byte, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range b {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// cut blocks reading c (discarding any answer) until the server closes it,
// and returns how long that took from since. It fails the test when c is
// still open after bound.
func cut(t *testing.T, r io.Reader, c net.Conn, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	_ = c.SetReadDeadline(since.Add(bound))
	_, err := io.Copy(io.Discard, r)
	took := time.Since(since)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", bound)
	}
	// EOF (io.Copy's nil) or a reset: both are the server hanging up.
	return took
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func TestServer_TrickledBodyCutAtReadTimeout(t *testing.T) {
	t.Parallel()
	readErr := make(chan error, 1)
	cfg := httpserver.Config{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 500 * time.Millisecond}
	addr := start(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	c := dial(t, addr)
	// 1,000 bytes at 10 B/s would take 100 s.
	const n = 1000
	t0 := time.Now()
	if _, err := io.WriteString(c, "POST /events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := trickle(c, []byte(strings.Repeat("x", n)), 100*time.Millisecond)
	defer stop()

	took := cut(t, c, c, t0, 10*time.Second)
	t.Logf("ReadTimeout %v: trickled body cut after %v", cfg.ReadTimeout, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("trickled body cut after %v, want before 5 s (ReadTimeout %v)", took, cfg.ReadTimeout)
	}
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("handler's body read: %v, want a deadline error", err)
	}
}

func TestServer_SlowHeaderCutAtReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	// ReadTimeout is long, so only ReadHeaderTimeout can cut in time.
	cfg := httpserver.Config{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 30 * time.Second}
	addr := start(t, cfg, http.HandlerFunc(ok))
	c := dial(t, addr)
	t0 := time.Now()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := trickle(c, []byte("X-Slow: "+strings.Repeat("x", 1000)), 100*time.Millisecond)
	defer stop()

	took := cut(t, c, c, t0, 20*time.Second)
	t.Logf("ReadHeaderTimeout %v: slow header cut after %v", cfg.ReadHeaderTimeout, took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("slow header cut after %v, want before 3 s (ReadHeaderTimeout %v)", took, cfg.ReadHeaderTimeout)
	}
}

func TestServer_IdleKeepAliveClosedAtIdleTimeout(t *testing.T) {
	t.Parallel()
	// ReadTimeout is long, so only IdleTimeout can close in time.
	cfg := httpserver.Config{ReadTimeout: 30 * time.Second, IdleTimeout: 300 * time.Millisecond}
	addr := start(t, cfg, http.HandlerFunc(ok))
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("answer %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}

	took := cut(t, br, c, time.Now(), 20*time.Second)
	t.Logf("IdleTimeout %v: idle connection closed after %v", cfg.IdleTimeout, took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("idle connection closed after %v, want before 3 s (IdleTimeout %v)", took, cfg.IdleTimeout)
	}
}

func TestServer_HeaderOverMaxHeaderBytesIs431(t *testing.T) {
	t.Parallel()
	addr := start(t, httpserver.Config{}, http.HandlerFunc(ok)) // the defaults: 16 KiB
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name  string
		bytes int
		want  int
	}{
		{"a large bearer key and trace context fit", 8 << 10, http.StatusOK},
		{"32 KiB", 32 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("k", tc.bytes))
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
