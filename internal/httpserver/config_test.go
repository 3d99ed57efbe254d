package httpserver_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/httpserver"
)

func TestNew_Defaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  httpserver.Config
		want httpserver.Config // the server's fields; HandlerTimeout unused
	}{
		{"zero", httpserver.Config{}, httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 25 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		}},
		{"publisher: PUBLISH_TIMEOUT lengthens the write", httpserver.Config{HandlerTimeout: 10 * time.Second}, httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 35 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		}},
		{"a shorter read shortens the write", httpserver.Config{ReadTimeout: time.Second, HandlerTimeout: 2 * time.Second}, httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Second, WriteTimeout: 8 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		}},
		{"negative means the default, never off", httpserver.Config{
			ReadHeaderTimeout: -1, ReadTimeout: -1, HandlerTimeout: -1, WriteTimeout: -1, IdleTimeout: -1, MaxHeaderBytes: -1,
		}, httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 25 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		}},
		{"given values stay", httpserver.Config{
			ReadHeaderTimeout: 1, ReadTimeout: 2, HandlerTimeout: 3, WriteTimeout: 4, IdleTimeout: 5, MaxHeaderBytes: 6,
		}, httpserver.Config{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 4, IdleTimeout: 5, MaxHeaderBytes: 6}},
		{"admin", httpserver.Admin(), httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		}},
		{"a test's short idle over admin", httpserver.Config{IdleTimeout: time.Millisecond}.Or(httpserver.Admin()), httpserver.Config{
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: time.Millisecond, MaxHeaderBytes: 8 << 10,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := httpserver.New(nil, tc.cfg, nil)
			got := httpserver.Config{
				ReadHeaderTimeout: s.ReadHeaderTimeout, ReadTimeout: s.ReadTimeout, WriteTimeout: s.WriteTimeout,
				IdleTimeout: s.IdleTimeout, MaxHeaderBytes: s.MaxHeaderBytes,
			}
			if got != tc.want {
				t.Errorf("New(%+v) sets %+v, want %+v", tc.cfg, got, tc.want)
			}
		})
	}
}

func TestNew_ErrorLogAtWarn(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := httpserver.New(nil, httpserver.Config{}, slog.New(slog.NewTextHandler(&buf, nil)))
	s.ErrorLog.Print("http: TLS handshake error")
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "TLS handshake error") {
		t.Errorf("ErrorLog wrote %q, want a WARN record", got)
	}
}
