package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/ingest"
)

// fakePublisher records batches and answers with publish, or confirms all.
type fakePublisher struct {
	connected bool
	publish   func(ctx context.Context, evs []event.Event) error

	mu      sync.Mutex
	batches [][]event.Event
}

func (f *fakePublisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(evs))
	f.mu.Unlock()
	if f.publish == nil {
		return nil
	}
	return f.publish(ctx, evs)
}

func (f *fakePublisher) Connected() bool { return f.connected }

func (f *fakePublisher) published() [][]event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

const (
	testTimeout = 200 * time.Millisecond
	testMaxBody = 256
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type handlerBundle struct {
	pub     *fakePublisher
	handler http.Handler
}

func setupHandler(t *testing.T, pub *fakePublisher) handlerBundle {
	t.Helper()
	if pub == nil {
		pub = &fakePublisher{connected: true}
	}
	h, err := ingest.New(ingest.Config{
		Publisher: pub,
		Auth:      ingest.AuthNone,
		Timeout:   testTimeout,
		MaxBody:   testMaxBody,
		Logger:    quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return handlerBundle{pub: pub, handler: h}
}

// serveRequest sends one request to h and decodes the JSON answer into a map.
func serveRequest(t *testing.T, h http.Handler, method, path, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	var got map[string]any
	if method != http.MethodHead {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type of the answer %q, want application/json", ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("answer is not a JSON object: %v: %q", err, rec.Body.String())
		}
	}
	return resp, got
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// none, as a test's content type, sends no Content-Type header.
const none = "(none)"

// TestHandler_Events_Rejects covers every answer that must not publish.
func TestHandler_Events_Rejects(t *testing.T) {
	t.Parallel()
	tooBig := `{"type":"A","data":{"pad":"` + strings.Repeat("x", testMaxBody) + `"}}`
	tests := []struct {
		name        string
		method      string
		contentType string // "" is application/json; none sends no Content-Type
		body        string
		wantStatus  int
		wantError   string // part of the "error" field
		wantInvalid []int  // indexes in "invalid"
	}{
		{name: "GET", method: http.MethodGet, wantStatus: 405, wantError: "method GET not allowed"},
		{name: "PUT", method: http.MethodPut, body: `{"type":"A"}`, wantStatus: 405, wantError: "method PUT"},
		{name: "no Content-Type", contentType: none, body: `{"type":"A"}`, wantStatus: 415, wantError: "Content-Type is missing: send application/json"},
		{name: "text/plain", contentType: "text/plain", body: `{"type":"A"}`, wantStatus: 415, wantError: `"text/plain" is not JSON`},
		{name: "form (curl -d default)", contentType: "application/x-www-form-urlencoded", body: `{"type":"A"}`, wantStatus: 415},
		{name: "unparsable content type", contentType: "json;;", body: `{"type":"A"}`, wantStatus: 415},
		{name: "body over the limit", body: tooBig, wantStatus: 413, wantError: "larger than 256 bytes"},
		{name: "empty body", body: "", wantStatus: 400, wantError: "empty body"},
		{name: "blank body", body: " \n ", wantStatus: 400, wantError: "empty body"},
		{name: "invalid JSON", body: `{"type":`, wantStatus: 400, wantError: "invalid JSON"},
		{name: "trailing brace", body: `{"type":"A"}}`, wantStatus: 400, wantError: "invalid JSON"},
		{name: "scalar", body: `"A"`, wantStatus: 400, wantError: "invalid JSON"},
		{name: "null", body: `null`, wantStatus: 400, wantError: "invalid JSON"},
		{name: "missing type", body: `{"aggregate_id":"a1"}`, wantStatus: 400, wantError: "event type is missing"},
		{name: "empty type", body: `{"type":""}`, wantStatus: 400, wantError: "event type is missing"},
		{name: "wildcard type", body: `{"type":"Card.#"}`, wantStatus: 400, wantError: "invalid event type"},
		{name: "unknown field", body: `{"type":"A","agregate_id":"a1"}`, wantStatus: 400, wantError: `unknown field "agregate_id"`},
		{name: "data not JSON-valid inside array", body: `[{"type":"A"},{"type":"B","data":}]`, wantStatus: 400, wantError: "invalid JSON"},
		{name: "empty array", body: `[]`, wantStatus: 400, wantError: "empty array"},
		{name: "bad array index", body: `[{"type":"A"},{"type":""},{"type":"C"}]`, wantStatus: 400,
			wantError: "index 1: event type is missing", wantInvalid: []int{1}},
		{name: "several bad indexes", body: `[{"type":"A"},{"nope":1},{"type":"C"},7]`, wantStatus: 400,
			wantError: "index 1", wantInvalid: []int{1, 3}},
		{name: "array of null", body: `[null]`, wantStatus: 400, wantError: "index 0", wantInvalid: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t, nil)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = "application/json"
			case none:
				ct = ""
			}
			resp, got := serveRequest(t, b.handler, method, "/events", ct, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; answer %v", resp.StatusCode, tt.wantStatus, got)
			}
			msg, _ := got["error"].(string)
			if msg == "" || !strings.Contains(msg, tt.wantError) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantError)
			}
			if tt.wantStatus == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
			}
			var idx []int
			if list, ok := got["invalid"].([]any); ok {
				for _, x := range list {
					idx = append(idx, int(x.(map[string]any)["index"].(float64)))
				}
			}
			if !slices.Equal(idx, tt.wantInvalid) {
				t.Errorf("invalid indexes %v, want %v", idx, tt.wantInvalid)
			}
			if n := len(b.pub.published()); n != 0 {
				t.Errorf("publisher called %d times for a rejected request", n)
			}
		})
	}
}

func TestHandler_Events_Accepts(t *testing.T) {
	t.Parallel()
	atLimit := `{"type":"A","data":{"p":"` + strings.Repeat("x", testMaxBody-len(`{"type":"A","data":{"p":""}}`)) + `"}}`
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []event.Event // ID "" means: a generated UUIDv7
	}{
		{name: "one event with everything", contentType: "application/json",
			body: `{"type":"CardAdded","aggregate_id":"lib-1","id":"e-1","data":{"n":1}}`,
			want: []event.Event{{ID: "e-1", Type: "CardAdded", AggregateID: "lib-1", Data: []byte(`{"n":1}`)}}},
		{name: "no id, no data", contentType: "application/json", body: `{"type":"CardAdded"}`,
			want: []event.Event{{Type: "CardAdded", Data: []byte(`{}`)}}},
		{name: "charset parameter", contentType: "application/json; charset=utf-8", body: ` {"type":"A"} `,
			want: []event.Event{{Type: "A", Data: []byte(`{}`)}}},
		{name: "+json type", contentType: "application/cloudevents+json", body: `{"type":"A","id":"x"}`,
			want: []event.Event{{ID: "x", Type: "A", Data: []byte(`{}`)}}},
		{name: "array keeps order", contentType: "text/json", body: `[{"type":"A","id":"1"},{"type":"B"},{"type":"C","id":"3","data":[1,2]}]`,
			want: []event.Event{{ID: "1", Type: "A", Data: []byte(`{}`)}, {Type: "B", Data: []byte(`{}`)},
				{ID: "3", Type: "C", Data: []byte(`[1,2]`)}}},
		{name: "body exactly at the limit", contentType: "application/json", body: atLimit,
			want: []event.Event{{Type: "A", Data: []byte(atLimit[len(`{"type":"A","data":`) : len(atLimit)-1])}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t, nil)
			resp, got := serveRequest(t, b.handler, http.MethodPost, "/events", tt.contentType, tt.body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d, want 202; answer %v", resp.StatusCode, got)
			}
			batches := b.pub.published()
			if len(batches) != 1 || len(batches[0]) != len(tt.want) {
				t.Fatalf("published %v, want one batch of %d", batches, len(tt.want))
			}
			ids := strs(got["ids"])
			if len(ids) != len(tt.want) {
				t.Fatalf("ids %v, want %d", ids, len(tt.want))
			}
			for i, ev := range batches[0] {
				w := tt.want[i]
				if ids[i] != ev.ID {
					t.Errorf("ids[%d] = %q, but event %d was published as %q", i, ids[i], i, ev.ID)
				}
				if w.ID != "" && ev.ID != w.ID {
					t.Errorf("event %d id %q, want %q", i, ev.ID, w.ID)
				}
				if u, err := uuid.Parse(ev.ID); w.ID == "" && (err != nil || u.Version() != 7) {
					t.Errorf("event %d id %q, want a generated UUIDv7", i, ev.ID)
				}
				if ev.Type != w.Type || ev.AggregateID != w.AggregateID || string(ev.Data) != string(w.Data) {
					t.Errorf("event %d = %+v, want %+v", i, ev, w)
				}
			}
		})
	}
}

func TestHandler_Events_Unconfirmed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		connected       bool
		publish         func(ctx context.Context, evs []event.Event) error
		wantError       string
		wantConfirmed   []string
		wantUnconfirmed []string
	}{
		{
			name:      "no confirm within the timeout",
			connected: true,
			publish: func(ctx context.Context, evs []event.Event) error {
				d, ok := ctx.Deadline()
				if !ok || time.Until(d) > testTimeout {
					return errors.New("test: the handler gave no PUBLISH_TIMEOUT deadline")
				}
				<-ctx.Done()
				return &amqp.BatchError{Errs: []error{ctx.Err(), ctx.Err()}, Failed: 2}
			},
			wantError:       "2 of 2 events not confirmed: the broker did not confirm within 200ms",
			wantConfirmed:   []string{},
			wantUnconfirmed: []string{"a", "b"},
		},
		{
			name:            "broker not connected",
			connected:       false,
			publish:         func(ctx context.Context, evs []event.Event) error { return context.DeadlineExceeded },
			wantError:       "the broker is not connected",
			wantConfirmed:   []string{},
			wantUnconfirmed: []string{"a", "b"},
		},
		{
			name:      "partial batch",
			connected: true,
			publish: func(ctx context.Context, evs []event.Event) error {
				return &amqp.BatchError{Errs: []error{nil, amqp.ErrNacked}, Failed: 1}
			},
			wantError:       "1 of 2 events not confirmed",
			wantConfirmed:   []string{"a"},
			wantUnconfirmed: []string{"b"},
		},
		{
			name:            "publisher stopped",
			connected:       false,
			publish:         func(ctx context.Context, evs []event.Event) error { return amqp.ErrClosed },
			wantError:       "amqp: closed",
			wantConfirmed:   []string{},
			wantUnconfirmed: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t, &fakePublisher{connected: tt.connected, publish: tt.publish})
			resp, got := serveRequest(t, b.handler, http.MethodPost, "/events", "application/json",
				`[{"type":"A","id":"a"},{"type":"B","id":"b"}]`)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503; answer %v", resp.StatusCode, got)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if msg, _ := got["error"].(string); !strings.Contains(msg, tt.wantError) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantError)
			}
			if c := strs(got["confirmed"]); !slices.Equal(c, tt.wantConfirmed) {
				t.Errorf("confirmed %v, want %v", c, tt.wantConfirmed)
			}
			if u := strs(got["unconfirmed"]); !slices.Equal(u, tt.wantUnconfirmed) {
				t.Errorf("unconfirmed %v, want %v", u, tt.wantUnconfirmed)
			}
		})
	}
}

// TestHandler_OtherPaths: the Handler serves /events only; /healthz and
// /readyz are internal/admin's, mounted beside it.
func TestHandler_OtherPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/", "/event", "/events/", "/healthz"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t, nil)
			resp, got := serveRequest(t, b.handler, http.MethodPost, path, "", `{"type":"A"}`)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(got["error"].(string), "POST events to /events") {
				t.Errorf("POST %s = %d %v, want 404 naming /events", path, resp.StatusCode, got)
			}
			if n := len(b.pub.published()); n != 0 {
				t.Errorf("publisher called %d times", n)
			}
		})
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
