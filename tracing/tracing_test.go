package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/eventfleet/eventfleet/tracing"
)

func TestInjectExtract_RoundTrip(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	h := amqp091.Table{"other": "kept"}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	if got := h["traceparent"]; got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent = %v", got)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("headers not valid AMQP: %v", err)
	}
	got := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	if got.TraceID() != tid || got.SpanID() != sid || !got.IsRemote() {
		t.Fatalf("extracted %v", got)
	}
	// Byte-array headers (as some clients send strings) work too.
	hb := amqp091.Table{"traceparent": []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}
	if got := trace.SpanContextFromContext(tracing.Extract(context.Background(), hb)); got.TraceID() != tid {
		t.Fatalf("from []byte: %v", got)
	}
}

func TestInject_NothingWithoutATrace(t *testing.T) {
	t.Parallel()
	h := amqp091.Table{}
	tracing.Inject(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("headers = %v, want none", h)
	}
	for _, bad := range []amqp091.Table{{}, {"traceparent": "garbage"}, {"traceparent": int32(5)}} {
		if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), bad)); sc.IsValid() {
			t.Errorf("Extract(%v) = %v, want no span context", bad, sc)
		}
	}
}

func TestOptions_Validate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o       tracing.Options
		enabled bool
		bad     bool
	}{
		{tracing.Options{}, false, false},
		{tracing.Options{Exporter: "none"}, false, false},
		{tracing.Options{Exporter: "otlp"}, true, false},
		{tracing.Options{Exporter: "otlp", Disabled: true}, false, false},
		{tracing.Options{Exporter: "jaeger"}, false, true},
		{tracing.Options{Exporter: "otlp", Protocol: "grpc"}, true, true},
	} {
		err := tc.o.Validate()
		if (err != nil) != tc.bad || tc.o.Enabled() != tc.enabled {
			t.Errorf("%+v: Validate = %v, Enabled = %v; want bad %v, enabled %v", tc.o, err, tc.o.Enabled(), tc.bad, tc.enabled)
		}
		if err != nil && !errors.Is(err, tracing.ErrUnsupported) {
			t.Errorf("%+v: error %v is not ErrUnsupported", tc.o, err)
		}
	}
}

// TestSetup_ExportsOverOTLP points the exporter at a fake collector with the
// standard variables and checks that a span arrives there, named for the
// service. Not parallel: it sets the environment and otel's globals.
func TestSetup_ExportsOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var got []*coltrace.ExportTraceServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltrace.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)

	shutdown, err := tracing.Setup(context.Background(), tracing.Options{Exporter: "otlp", Service: "svc-under-test"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Tracer(nil).Start(context.Background(), "publish test")
	want := span.SpanContext().TraceID()
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, req := range got {
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					if trace.TraceID(s.GetTraceId()) == want && s.GetName() == "publish test" {
						if service != "svc-under-test" {
							t.Errorf("service.name = %q, want svc-under-test", service)
						}
						return
					}
				}
			}
		}
	}
	t.Fatalf("span %s not exported; collector got %d requests", want, len(got))
}

func TestSetup_OffByDefault(t *testing.T) {
	t.Parallel()
	shutdown, err := tracing.Setup(context.Background(), tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tracing.Setup(context.Background(), tracing.Options{Exporter: "zipkin"}); !errors.Is(err, tracing.ErrUnsupported) {
		t.Fatalf("Setup(zipkin) = %v, want ErrUnsupported", err)
	}
}
