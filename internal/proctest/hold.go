package proctest

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// Hold takes addr (a fixed port such as METRICS_ADDR's default) for the rest
// of t and serves h there, as another process on the host would. Tests of
// other packages running at the same time may hold it for a while, so it
// waits up to two minutes for the port, then skips t saying why.
func Hold(t testing.TB, addr string, h http.Handler) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var ln net.Listener
	for {
		var err error
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("%s stays taken by another process (%v); this test must hold it itself", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}
