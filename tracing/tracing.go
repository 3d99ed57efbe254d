package tracing

import (
	"context"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of eventfleet's spans.
const Name = "github.com/eventfleet/eventfleet"

// propagator is fixed rather than otel's global one: propagation must work
// whether or not anyone configured OpenTelemetry.
var propagator = propagation.TraceContext{}

// Propagator returns the W3C trace-context propagator eventfleet uses on
// messages and webhook requests.
func Propagator() propagation.TextMapPropagator { return propagator }

// Tracer returns eventfleet's tracer from tp, or when tp is nil from the
// global TracerProvider: a no-op one (which still carries a parent's context
// on) unless Setup or the application installs another, even later.
//
// With no provider installed, a span for a context that carries no trace
// would record nothing and propagate nothing, yet starting it allocates
// (docs/design.md, "Client costs measured"); the tracer skips
// it and returns the context's own (no-op) span instead. A context that
// carries a trace still gets a span, so its trace goes on.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return quietTracer{global: true, t: otel.GetTracerProvider().Tracer(Name)}
	}
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return quietTracer{t: tp.Tracer(Name)}
	}
	return tp.Tracer(Name)
}

// unsetGlobal is otel's global TracerProvider as found at start-up if it is
// otel's own default (which hands out no-op spans until the application
// installs a provider), else nil. The default's type is internal to otel,
// so it is known by name; should the name change, unsetGlobal is nil and
// the global tracer simply never skips a span.
var unsetGlobal = func() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if fmt.Sprintf("%T", tp) != "*global.tracerProvider" {
		return nil
	}
	return tp
}()

// quietTracer is a tracer that may have no provider behind it: a no-op one,
// or the global one while nothing is installed.
type quietTracer struct {
	embedded.Tracer
	global bool // t is from the global provider, which may be installed later
	t      trace.Tracer
}

func (q quietTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() && q.idle() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return q.t.Start(ctx, name, opts...)
}

// idle reports whether no provider stands behind the tracer now.
func (q quietTracer) idle() bool {
	if !q.global {
		return true
	}
	return unsetGlobal != nil && otel.GetTracerProvider() == unsetGlobal
}

// Headers adapts AMQP headers to a propagation.TextMapCarrier.
type Headers amqp091.Table

// Get returns a string (or byte array) header.
func (h Headers) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets a string header.
func (h Headers) Set(key, value string) { h[key] = value }

// Keys lists the header names.
func (h Headers) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h. With no valid span in ctx it
// writes nothing.
func Inject(ctx context.Context, h amqp091.Table) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, Headers(h))
}

// Extract returns ctx carrying the trace context found in h, if any.
func Extract(ctx context.Context, h amqp091.Table) context.Context {
	if _, ok := h["traceparent"]; !ok {
		return ctx
	}
	return propagator.Extract(ctx, Headers(h))
}

// Semantic-convention attribute keys for messaging spans.
var (
	System      = attribute.Key("messaging.system").String("rabbitmq")
	OpName      = attribute.Key("messaging.operation.name")
	OpType      = attribute.Key("messaging.operation.type")
	Destination = attribute.Key("messaging.destination.name")
	RoutingKey  = attribute.Key("messaging.rabbitmq.destination.routing_key")
	MessageID   = attribute.Key("messaging.message.id")
	BodySize    = attribute.Key("messaging.message.body.size")
	Consumer    = attribute.Key("messaging.consumer.group.name")
	DeliveryTag = attribute.Key("messaging.rabbitmq.message.delivery_tag")
	EventType   = attribute.Key("eventfleet.event.type")
	Attempt     = attribute.Key("eventfleet.attempt")
	Outcome     = attribute.Key("eventfleet.outcome")
)
