package ingest_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestHandler_Auth_RealBroker: without a valid key nothing is published
// (401); a key out of its scope refuses the whole request (403); a key in
// scope publishes under its caller's name as app_id.
func TestHandler_Auth_RealBroker(t *testing.T) {
	t.Parallel()
	p, queue := startPublisher(t, brokertest.URL(t))
	billingKey, anyKey := mustKey(), mustKey()
	keys, err := ingest.ParseKeys("# callers\nbilling " + ingest.HashKey(billingKey) + " Billing.#,OrderPlacedEvent; ops " + ingest.HashKey(anyKey))
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	h, err := ingest.New(ingest.Config{Publisher: p, Keys: keys, Timeout: 30 * time.Second, Logger: quiet(),
		AccessLog: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	for _, tt := range []struct {
		name, auth, body string
		wantStatus       int
		wantError        string
	}{
		{"no key", "", `{"type":"OrderPlacedEvent","id":"a-1"}`, 401, "missing API key"},
		{"not bearer", "Basic " + billingKey, `{"type":"OrderPlacedEvent","id":"a-2"}`, 401, "missing API key"},
		{"unknown key", "Bearer " + mustKey(), `{"type":"OrderPlacedEvent","id":"a-3"}`, 401, "unknown API key"},
		{"the hash as key", "Bearer " + ingest.HashKey(billingKey), `{"type":"OrderPlacedEvent","id":"a-4"}`, 401, "unknown API key"},
		{"out of scope", "Bearer " + billingKey, `{"type":"CardAddedToLibraryEvent","id":"a-5"}`, 403,
			`caller "billing" may not publish events of type "CardAddedToLibraryEvent" (its key allows Billing.#, OrderPlacedEvent); nothing was published`},
		{"one of many out of scope", "Bearer " + billingKey,
			`[{"type":"Billing.InvoiceSent","id":"a-6"},{"type":"Shipping.Sent","id":"a-7"}]`, 403, `"Shipping.Sent"`},
	} {
		resp, got := postAuth(t, srv.URL+"/events", tt.auth, tt.body)
		if resp.StatusCode != tt.wantStatus || !strings.Contains(str(got["error"]), tt.wantError) {
			t.Errorf("%s: %d %v, want %d with error containing %q", tt.name, resp.StatusCode, got, tt.wantStatus, tt.wantError)
		}
		if tt.wantStatus == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="eventfleet"`) {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", tt.name, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// In scope: published, under the caller's name. The case of the scheme
	// does not matter.
	for _, tt := range []struct{ auth, body, caller string }{
		{"Bearer " + billingKey, `[{"type":"Billing.InvoiceSent","id":"ok-1"},{"type":"OrderPlacedEvent","id":"ok-2"}]`, "billing"},
		{"bearer " + anyKey, `{"type":"CardAddedToLibraryEvent","id":"ok-3"}`, "ops"},
	} {
		if resp, got := postAuth(t, srv.URL+"/events", tt.auth, tt.body); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %v, want 202", tt.body, resp.StatusCode, got)
		}
	}
	arrived := brokertest.Drain(t, queue, 3, 300*time.Millisecond)
	want := map[string]string{"ok-1": "billing", "ok-2": "billing", "ok-3": "ops"}
	for _, d := range arrived {
		if want[d.MessageId] != d.AppId {
			t.Errorf("event %s arrived with app_id %q, want %q", d.MessageId, d.AppId, want[d.MessageId])
		}
		delete(want, d.MessageId)
	}
	if len(want) > 0 {
		t.Errorf("not arrived: %v (refused requests must publish nothing; arrived %d)", want, len(arrived))
	}

	// The access log names the caller, never the key.
	logs.mu.Lock()
	lines := logs.buf.String()
	logs.mu.Unlock()
	for _, k := range []string{billingKey, anyKey, ingest.HashKey(billingKey)} {
		if strings.Contains(lines, k) {
			t.Errorf("access log holds key material %q:\n%s", k, lines)
		}
	}
	if !strings.Contains(lines, `"caller":"billing"`) || !strings.Contains(lines, `"status":401`) || !strings.Contains(lines, `"status":403`) {
		t.Errorf("access log lacks the caller or a refused request:\n%s", lines)
	}
}

// TestNew_Auth: AuthKeys, the zero value, needs a key; AuthNone does not.
func TestNew_Auth(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	empty, err := ingest.ParseKeys("# no key yet")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []ingest.Config{
		{Publisher: pub},
		{Publisher: pub, Keys: empty},
		{Publisher: pub, Auth: ingest.Auth(7)},
	} {
		if _, err := ingest.New(cfg); !errors.Is(err, ingest.ErrInvalidConfig) {
			t.Errorf("New(Auth %v, %d keys) = %v, want ErrInvalidConfig", cfg.Auth, cfg.Keys.Len(), err)
		}
	}
	if _, err := ingest.New(ingest.Config{Publisher: pub, Auth: ingest.AuthNone}); err != nil {
		t.Errorf("New(AuthNone) = %v", err)
	}
}

// TestHandler_AuthBeforeBody: an anonymous request is refused on its
// headers; its body is never read, so it costs nothing to refuse a big one.
func TestHandler_AuthBeforeBody(t *testing.T) {
	t.Parallel()
	keys, err := ingest.ParseKeys("ops " + ingest.HashKey(mustKey()))
	if err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{connected: true}
	h := newHandler(t, ingest.Config{Publisher: pub, Keys: keys})
	body := &countingReader{r: strings.NewReader(strings.Repeat(" ", 1<<20) + `{"type":"A"}`)}
	req := httptest.NewRequest("POST", "/events", body)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || body.n != 0 {
		t.Errorf("anonymous 1 MiB request: %d after reading %d bytes, want 401 after none", rec.Code, body.n)
	}
}

type countingReader struct {
	r *strings.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// postAuth is post with an Authorization header (none when auth is "").
func postAuth(t *testing.T, url, auth, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %v", url, err)
	}
	return resp, got
}

func str(v any) string { s, _ := v.(string); return s }

// TestHandler_BodyReadErrors: a body that stops arriving is 408, one that
// breaks is 400; neither answer carries the read error, which names the
// server's own address.
func TestHandler_BodyReadErrors(t *testing.T) {
	t.Parallel()
	h := newHandler(t, ingest.Config{Publisher: &fakePublisher{connected: true}})
	for _, tt := range []struct {
		err  error
		want int
	}{
		{&net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8080}, Err: os.ErrDeadlineExceeded}, http.StatusRequestTimeout},
		{io.ErrUnexpectedEOF, http.StatusBadRequest},
	} {
		req := httptest.NewRequest("POST", "/events", io.MultiReader(strings.NewReader(`[{"type":"A"},`), errReader{tt.err}))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want || strings.Contains(rec.Body.String(), "10.0.0.7") {
			t.Errorf("body failing with %v: %d %s, want %d without the address", tt.err, rec.Code, rec.Body, tt.want)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
