package ingest_test

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

func TestNew_InvalidConfig(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	tests := []struct {
		name string
		cfg  ingest.Config
		want string
	}{
		{"no publisher", ingest.Config{}, "no Publisher"},
		{"negative timeout", ingest.Config{Publisher: pub, Timeout: -1}, "Timeout"},
		{"negative body", ingest.Config{Publisher: pub, MaxBody: -1}, "MaxBody"},
		{"nil middleware", ingest.Config{Publisher: pub, Middleware: []ingest.Middleware{nil}}, "Middleware[0]"},
		{"negative MaxEvents", ingest.Config{Publisher: pub, MaxEvents: -1}, "MaxEvents -1 is negative"},
		{"negative MaxDepth", ingest.Config{Publisher: pub, MaxDepth: -1}, "MaxDepth -1 is negative"},
		{"MaxInFlight below MaxEvents", ingest.Config{Publisher: pub, MaxInFlight: 499},
			"MaxInFlight 499 is below MaxEvents 500: a request of MaxEvents events could never be admitted"},
		{"MaxInFlight below a set MaxEvents", ingest.Config{Publisher: pub, MaxEvents: 10, MaxInFlight: 9}, "MaxInFlight 9 is below MaxEvents 10"},
		{"negative Rate", ingest.Config{Publisher: pub, Rate: -1}, "Rate -1 is not a number of events per second"},
		{"NaN Rate", ingest.Config{Publisher: pub, Rate: math.NaN()}, "Rate NaN"},
		{"infinite Rate", ingest.Config{Publisher: pub, Rate: math.Inf(1)}, "Rate +Inf"},
		{"negative Burst", ingest.Config{Publisher: pub, Burst: -1}, "Burst -1 is negative"},
		{"Burst below MaxEvents", ingest.Config{Publisher: pub, Rate: 1, Burst: 499},
			"Burst 499 is below MaxEvents 500: a request of MaxEvents events could never pass the rate limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ingest.New(tt.cfg)
			if !errors.Is(err, ingest.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want ErrInvalidConfig naming %s", err, tt.want)
			}
		})
	}
}

// TestNew_Defaults: a zero MaxBody is DefaultMaxBody, not "no body".
func TestNew_Defaults(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{connected: true}
	h, err := ingest.New(ingest.Config{Auth: ingest.AuthNone, Publisher: pub, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	big := `{"type":"A","data":"` + strings.Repeat("x", ingest.DefaultMaxBody-100) + `"}`
	if resp, got := serveRequest(t, h, http.MethodPost, "/events", "application/json", big); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a body just under DefaultMaxBody: %d %v, want 202", resp.StatusCode, got)
	}
	over := `{"type":"A","data":"` + strings.Repeat("x", ingest.DefaultMaxBody) + `"}`
	if resp, _ := serveRequest(t, h, http.MethodPost, "/events", "application/json", over); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over DefaultMaxBody: %d, want 413", resp.StatusCode)
	}
}

// TestHandler_Middleware: middleware runs outermost first, before the body
// is read, and only on the events endpoint.
func TestHandler_Middleware(t *testing.T) {
	t.Parallel()
	var order []string
	mark := func(name string) ingest.Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	refuse := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				order = append(order, "refused")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	pub := &fakePublisher{connected: true}
	h, err := ingest.New(ingest.Config{Auth: ingest.AuthNone, Publisher: pub, Logger: quiet(), Middleware: []ingest.Middleware{mark("outer"), refuse, mark("inner")}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "/events", strings.NewReader(`{"type":"A"}`))
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || strings.Join(order, ",") != "outer,refused" || len(pub.published()) != 0 {
		t.Errorf("without Authorization: %d, ran %v, %d published; want 401 from the middleware, nothing published",
			rec.Code, order, len(pub.published()))
	}
	order = nil
	req, _ = http.NewRequest(http.MethodPost, "/events", strings.NewReader(`{"type":"A"}`))
	req.Header.Set("Authorization", "x")
	req.Header.Set("Content-Type", "application/json")
	rec = newRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || strings.Join(order, ",") != "outer,inner" || len(pub.published()) != 1 {
		t.Errorf("with Authorization: %d, ran %v, %d published; want 202 through outer then inner", rec.Code, order, len(pub.published()))
	}
	order = nil
	serveRequest(t, h, http.MethodGet, "/other", "", "")
	if len(order) != 0 {
		t.Errorf("middleware ran for another path: %v", order)
	}
}
