package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventfleet/eventfleet/tracing"
)

// parent is a context carrying a remote caller's trace.
func parent(t *testing.T) (context.Context, trace.TraceID) {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), tid
}

// With no provider installed, a span for a context without a trace is
// skipped (no allocation), and one with a trace still carries it on.
func TestTracer_QuietWithoutProvider(t *testing.T) {
	for name, tr := range map[string]trace.Tracer{
		"noop provider": tracing.Tracer(noop.NewTracerProvider()),
		// The global one, as no test in this package leaves one installed.
		"global": tracing.Tracer(nil),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if allocs := testing.AllocsPerRun(100, func() {
				_, span := tr.Start(ctx, "publish x")
				span.End()
			}); allocs != 0 {
				t.Errorf("span for a context without a trace: %v allocations, want 0", allocs)
			}
			got, span := tr.Start(ctx, "publish x")
			if span.SpanContext().IsValid() || span.IsRecording() || got != ctx {
				t.Errorf("span for a context without a trace: %v, recording %v", span.SpanContext(), span.IsRecording())
			}
			pctx, tid := parent(t)
			got, span = tr.Start(pctx, "publish x")
			if sc := trace.SpanContextFromContext(got); sc.TraceID() != tid || span.SpanContext().TraceID() != tid {
				t.Errorf("a caller's trace was not carried on: context %v, span %v", sc, span.SpanContext())
			}
		})
	}
}

// A provider installed after the tracer was made is used from then on.
// Not parallel: it sets otel's global provider.
func TestTracer_ProviderInstalledLater(t *testing.T) {
	tr := tracing.Tracer(nil)
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	otel.SetTracerProvider(tp)

	_, span := tr.Start(context.Background(), "publish x")
	defer span.End()
	if !span.IsRecording() || !span.SpanContext().IsValid() {
		t.Fatalf("after installing a provider: span %v, recording %v; want a recorded root span", span.SpanContext(), span.IsRecording())
	}
}
