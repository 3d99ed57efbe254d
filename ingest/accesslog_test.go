package ingest_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

// logBuffer collects JSON log lines; safe for the handler's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestHandler_AccessLog: one INFO line per request, whatever answered it,
// with the first ids of a published request and never a body or a header.
func TestHandler_AccessLog(t *testing.T) {
	t.Parallel()
	const secret = "efk_SECRET-KEY-MATERIAL"
	refuse := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+secret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	tests := []struct {
		name       string
		auth       bool
		path, body string
		wantStatus int
		wantEvents int
		wantIDs    []string
	}{
		{name: "accepted", auth: true, body: `[{"type":"A","id":"a1"},{"type":"A","id":"a2"},{"type":"A","id":"a3"},{"type":"A","id":"a4"}]`,
			wantStatus: 202, wantEvents: 4, wantIDs: []string{"a1", "a2", "a3"}},
		{name: "refused by the middleware", body: `{"type":"A","id":"nope"}`, wantStatus: 401},
		{name: "too many events", auth: true, body: events(6), wantStatus: 413, wantEvents: 6},
		{name: "invalid", auth: true, body: `{"type":"A","id":"x","data":"` + secret + `"`, wantStatus: 400, wantEvents: 1},
		{name: "other path", path: "/x", body: `{}`, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			h := newHandler(t, ingest.Config{
				Publisher:  &fakePublisher{connected: true},
				MaxEvents:  5,
				Logger:     quiet(),
				AccessLog:  slog.New(slog.NewJSONHandler(&logs, nil)),
				Middleware: []ingest.Middleware{refuse},
			})
			path := tt.path
			if path == "" {
				path = "/events"
			}
			req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = "192.0.2.7:4711"
			if tt.auth {
				req.Header.Set("Authorization", "Bearer "+secret)
			}
			rec := newRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			lines := logs.lines(t, "request")
			if len(lines) != 1 {
				t.Fatalf("%d access log lines, want 1: %s", len(lines), logs.buf.String())
			}
			l := lines[0]
			if l["level"] != "INFO" || l["remote"] != "192.0.2.7:4711" || l["method"] != "POST" || l["path"] != path ||
				l["status"] != float64(tt.wantStatus) || l["events"] != float64(tt.wantEvents) || l["caller"] != "" {
				t.Errorf("line %v, want INFO POST %s %d with %d events from 192.0.2.7:4711", l, path, tt.wantStatus, tt.wantEvents)
			}
			if _, ok := l["duration"].(float64); !ok {
				t.Errorf("duration %v, want a number (nanoseconds)", l["duration"])
			}
			wantBytes := float64(len(tt.body))
			if tt.wantStatus == 401 || tt.wantStatus == 404 {
				wantBytes = 0 // not read
			}
			if l["bytes"] != wantBytes {
				t.Errorf("bytes %v, want %v", l["bytes"], wantBytes)
			}
			if got := strs(l["ids"]); strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids %v, want %v", got, tt.wantIDs)
			}
			if strings.Contains(logs.buf.String(), secret) {
				t.Errorf("the log holds key material or a body: %s", logs.buf.String())
			}
		})
	}
}
