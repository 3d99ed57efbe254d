package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// received is one request as the endpoint saw it.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// bundle is what a test needs: an endpoint that records requests and answers
// with respond, and a Handler pointed at it.
type bundle struct {
	srv     *httptest.Server
	handler *Handler

	mu   sync.Mutex
	reqs []received
	// newConns counts TCP connections the server accepted.
	newConns atomic.Int64
}

func (b *bundle) requests() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.reqs...)
}

func setup(t *testing.T, respond http.HandlerFunc) *bundle {
	t.Helper()
	b := &bundle{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		b.mu.Unlock()
		respond(w, r)
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.newConns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	h, err := New(Config{URL: b.srv.URL + "/hook?token=secret"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(h.client.CloseIdleConnections)
	b.handler = h
	return b
}

func testEvent() event.Event {
	return event.Event{
		ID:          "0190c0de-0000-7000-8000-000000000001",
		Type:        "CardAddedToLibraryEvent",
		AggregateID: "library-42",
		Source:      "catalog",
		Time:        time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		// Odd spacing and key order: the body must arrive exactly as published.
		Data:    json.RawMessage(`{"z": 1,  "a":[1, 2], "s":"<&>"}`),
		Attempt: 3,
	}
}

func TestHandle_StatusMapping(t *testing.T) {
	t.Parallel()
	const (
		ok = iota
		retryable
		permanent
	)
	tests := []struct {
		status int
		want   int
	}{
		{200, ok},
		{204, ok},
		{301, permanent},
		{400, permanent},
		{404, permanent},
		{408, retryable},
		{409, permanent},
		{422, permanent},
		{429, retryable},
		{500, retryable},
		{503, retryable},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			var redirected atomic.Bool
			b := setup(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					redirected.Store(true)
					w.WriteHeader(http.StatusOK)
					return
				}
				if tt.status/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, "answer-for-%d", tt.status)
			})
			err := b.handler.Handle(context.Background(), testEvent())
			switch tt.want {
			case ok:
				if err != nil {
					t.Fatalf("status %d: got error %v, want nil", tt.status, err)
				}
				return
			case retryable:
				if err == nil || retry.IsPermanent(err) {
					t.Fatalf("status %d: got %v, want a retryable error", tt.status, err)
				}
			case permanent:
				if !retry.IsPermanent(err) {
					t.Fatalf("status %d: got %v, want a permanent error", tt.status, err)
				}
			}
			var serr *StatusError
			if !errors.As(err, &serr) || serr.StatusCode != tt.status {
				t.Errorf("error %v: want a *StatusError with code %d", err, tt.status)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(tt.status)) || !strings.Contains(msg, fmt.Sprintf("answer-for-%d", tt.status)) {
				t.Errorf("error %q: want the status and the body snippet", msg)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error %q leaks the URL's query string", msg)
			}
			if redirected.Load() {
				t.Errorf("redirect was followed")
			}
			if n := len(b.requests()); n != 1 {
				t.Errorf("endpoint got %d requests, want 1", n)
			}
		})
	}
}

func TestHandle_RequestArrivesExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*event.Event)
		want map[string]string // "" means: header absent
		body string
	}{
		{
			name: "all fields",
			edit: func(*event.Event) {},
			want: map[string]string{
				"Content-Type":    "application/json",
				"User-Agent":      "eventfleet-worker",
				"X-Event-Id":      "0190c0de-0000-7000-8000-000000000001",
				"X-Event-Type":    "CardAddedToLibraryEvent",
				"X-Event-Attempt": "3",
				"X-Aggregate-Id":  "library-42",
				"X-Event-Source":  "catalog",
				HeaderDropped:     "",
			},
			body: `{"z": 1,  "a":[1, 2], "s":"<&>"}`,
		},
		{
			name: "optional fields empty",
			edit: func(ev *event.Event) {
				ev.AggregateID, ev.Source, ev.Attempt = "", "", 1
				ev.Data = json.RawMessage("[\n  1,\n  2\n]")
			},
			want: map[string]string{
				"X-Event-Attempt": "1",
				"X-Aggregate-Id":  "",
				"X-Event-Source":  "",
			},
			body: "[\n  1,\n  2\n]",
		},
		{
			name: "no data",
			edit: func(ev *event.Event) { ev.Data = nil },
			want: map[string]string{"Content-Type": "application/json"},
			body: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
			ev := testEvent()
			tt.edit(&ev)
			if err := b.handler.Handle(context.Background(), ev); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			reqs := b.requests()
			if len(reqs) != 1 {
				t.Fatalf("endpoint got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != "/hook" {
				t.Errorf("request %s %s, want POST /hook", r.method, r.path)
			}
			if string(r.body) != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			for name, want := range tt.want {
				got, present := r.header[http.CanonicalHeaderKey(name)]
				switch {
				case want == "" && present:
					t.Errorf("header %s = %q, want it absent", name, got)
				case want != "" && (len(got) != 1 || got[0] != want):
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestHandle_UnsendableHeaderValuesAreDropped: a foreign publisher's id,
// aggregate id or app id with a control character does not fail the event;
// the header is left out and named.
func TestHandle_UnsendableHeaderValuesAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	ev := testEvent()
	ev.ID = "id\x1b[2J\n  reason:      FAKE"
	ev.AggregateID = "a\r\nX-Injected: 1"
	ev.Source = "legacy\x00"
	if err := b.handler.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle: %v, want the event delivered", err)
	}
	reqs := b.requests()
	if len(reqs) != 1 {
		t.Fatalf("endpoint got %d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	for _, name := range []string{HeaderEventID, HeaderAggregateID, HeaderSource, "X-Injected"} {
		if v, ok := h[name]; ok {
			t.Errorf("header %s = %q, want it absent", name, v)
		}
	}
	if got, want := h.Get(HeaderDropped), "X-Event-Id,X-Aggregate-Id,X-Event-Source"; got != want {
		t.Errorf("%s = %q, want %q", HeaderDropped, got, want)
	}
	if got := h.Get(HeaderEventType); got != ev.Type {
		t.Errorf("%s = %q, want %q", HeaderEventType, got, ev.Type)
	}
	if string(reqs[0].body) != string(ev.Data) {
		t.Errorf("body %q, want %q", reqs[0].body, ev.Data)
	}
}

// hang answers only when the client gives up (or after a minute, so a broken
// test cannot hang the server's Close).
func hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

func TestHandle_ContextDeadlineIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t, hang)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.handler.Handle(ctx, testEvent())
	if err == nil || retry.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a retryable deadline error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q leaks the URL's query string", err)
	}
}

func TestHandle_ConfigTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t, hang)
	h, err := New(Config{URL: b.srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Handle(context.Background(), testEvent())
	if err == nil || retry.IsPermanent(err) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("got %v, want a retryable timeout error", err)
	}
}

func TestHandle_ConnectionRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	h, err := New(Config{URL: "http://user:pw123@" + addr + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Handle(context.Background(), testEvent())
	if err == nil || retry.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "pw123") {
		t.Errorf("error %q leaks the URL's password", err)
	}
}

func TestHandle_BodySnippetIsBounded(t *testing.T) {
	t.Parallel()
	head := strings.Repeat("a", SnippetLen)
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, head+"ZZZZ-past-the-snippet")
	})
	err := b.handler.Handle(context.Background(), testEvent())
	var serr *StatusError
	if !errors.As(err, &serr) {
		t.Fatalf("got %v, want a *StatusError", err)
	}
	if serr.Body != head {
		t.Errorf("snippet is %d bytes %q…, want the first %d bytes", len(serr.Body), serr.Body[:min(len(serr.Body), 20)], SnippetLen)
	}
	if strings.Contains(err.Error(), "ZZZZ") {
		t.Errorf("error quotes more than %d bytes of the body", SnippetLen)
	}
}

// TestHandle_ReusesConnections fails when response bodies are not drained:
// net/http then closes each connection instead of pooling it.
func TestHandle_ReusesConnections(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 32<<10)
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, big)
	})
	for range 20 {
		if err := b.handler.Handle(context.Background(), testEvent()); err == nil {
			t.Fatal("want an error for 503")
		}
	}
	if n := b.newConns.Load(); n != 1 {
		t.Errorf("20 sequential requests opened %d connections, want 1", n)
	}
}

func TestHandle_ConcurrentCallsShareThePool(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	const workers, rounds = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				errs <- b.handler.Handle(context.Background(), testEvent())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// About one connection per concurrent caller (a few more when a dial
	// loses the race to a freed connection). With net/http's default pool
	// of 2 idle connections per host, most rounds would dial again: several
	// hundred connections.
	if n := b.newConns.Load(); n > 2*workers {
		t.Errorf("%d concurrent callers opened %d connections", workers, n)
	}
}

func TestNew_GivenClientNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	var used atomic.Bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	h, err := New(Config{URL: b.srv.URL, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Handle(context.Background(), testEvent())
	if !retry.IsPermanent(err) || followed.Load() {
		t.Fatalf("got %v (followed: %v), want a permanent error and no redirect", err, followed.Load())
	}
	if !used.Load() {
		t.Error("the given client's transport was not used")
	}
	if client.CheckRedirect != nil {
		t.Error("New changed the caller's client")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" means valid
	}{
		{"http", Config{URL: "http://example.com/hook"}, ""},
		{"https with port", Config{URL: "https://example.com:8443/hook?token=x"}, ""},
		{"empty", Config{}, "URL is required"},
		{"ftp", Config{URL: "ftp://user:hunter2@example.com/"}, "scheme must be http or https"},
		{"no scheme", Config{URL: "example.com/hook"}, "scheme must be http or https"},
		{"host:port without scheme", Config{URL: "localhost:8080"}, "scheme must be http or https"},
		{"no host", Config{URL: "http:///hook"}, "has no host"},
		{"port only", Config{URL: "http://:8080/hook"}, "has no host"},
		{"unparsable", Config{URL: "http://user:hunter2@exa mple.com/"}, "not a valid URL"},
		{"negative timeout", Config{URL: "http://example.com", Timeout: -time.Second}, "Timeout -1s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New: %v", err)
				}
				if h.timeout != DefaultTimeout {
					t.Errorf("timeout %v, want the default %v", h.timeout, DefaultTimeout)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrInvalidConfig saying %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestNew_DefaultTransportPool(t *testing.T) {
	t.Parallel()
	h, err := New(Config{URL: "http://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := h.client.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost < 64 || tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Fatalf("transport %T: want a pool of at least 64 idle connections per host", h.client.Transport)
	}
	if h.client.CheckRedirect == nil {
		t.Error("redirects would be followed")
	}
}

func TestURL_HidesSecrets(t *testing.T) {
	t.Parallel()
	h, err := New(Config{URL: "https://bot:pw@example.com/hook?token=abc#frag"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.URL(), "https://bot:xxxxx@example.com/hook"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"newlines folded", "line one\n\tline two\r\n", "line one line two"},
		{"cut", strings.Repeat("b", SnippetLen+10), strings.Repeat("b", SnippetLen)},
		{"no split rune", strings.Repeat("b", SnippetLen-1) + "é", strings.Repeat("b", SnippetLen-1)},
		{"invalid UTF-8 replaced", "ok\xff", "ok\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := snippet([]byte(tt.in)); got != tt.want {
				t.Errorf("snippet(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	long := snippet([]byte(strings.Repeat("\xff", SnippetLen)))
	if len(long) > SnippetLen {
		t.Errorf("snippet of invalid bytes is %d bytes, more than %d", len(long), SnippetLen)
	}
}

// Validate names the field at fault, for internal/config to name its
// variable; it sees a zero as a value, so a caller that filled in the
// defaults (WithDefaults) learns that a written 0 is out of range.
func TestConfig_ValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg   Config
		field string
	}{
		{Config{URL: "ftp://u:hunter2@x/"}.WithDefaults(), "URL"},
		{Config{URL: "http://x/", Timeout: 0, MaxIdleConnsPerHost: 1}, "Timeout"},
		{Config{URL: "http://x/", Timeout: time.Second}, "MaxIdleConnsPerHost"},
	} {
		err := tt.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%+v: %v, want a *ConfigError for %s", tt.cfg, err, tt.field)
		}
	}
	if err := (Config{URL: "http://x/"}).WithDefaults().Validate(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}
