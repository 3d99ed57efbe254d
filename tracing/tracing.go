package tracing

import (
	"context"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
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
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(Name)
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
