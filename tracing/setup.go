package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Exporter values of OTEL_TRACES_EXPORTER that Setup accepts.
const (
	ExporterNone = "none"
	ExporterOTLP = "otlp"
)

// ErrUnsupported is a setting Setup cannot honour.
var ErrUnsupported = errors.New("tracing: unsupported setting")

// Options are what Setup needs besides the OTEL_* variables that the
// OpenTelemetry SDK reads itself.
type Options struct {
	// Exporter is OTEL_TRACES_EXPORTER: "" or "none" (the default: export
	// nothing) or "otlp".
	Exporter string
	// Protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
	// OTEL_EXPORTER_OTLP_PROTOCOL: "" or "http/protobuf".
	Protocol string
	// Disabled is OTEL_SDK_DISABLED=true: export nothing whatever Exporter says.
	Disabled bool
	// Service is the service.name when OTEL_SERVICE_NAME does not set one.
	Service string
}

// Enabled reports whether o turns span export on.
func (o Options) Enabled() bool { return !o.Disabled && o.Exporter == ExporterOTLP }

// Validate checks the settings; errors name the variable.
func (o Options) Validate() error {
	switch o.Exporter {
	case "", ExporterNone, ExporterOTLP:
	default:
		return fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q: use otlp or none", ErrUnsupported, o.Exporter)
	}
	switch o.Protocol {
	case "", "http/protobuf":
	default:
		return fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL=%q: only http/protobuf is built in", ErrUnsupported, o.Protocol)
	}
	return nil
}

// Setup installs a TracerProvider that exports spans over OTLP/HTTP when o
// enables it, and the W3C propagators as otel's global ones. It returns a
// function that flushes and stops the export; call it on shutdown. When
// export is off it installs nothing and the returned function does nothing.
func Setup(ctx context.Context, o Options) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if err := o.Validate(); err != nil {
		return noop, err
	}
	if !o.Enabled() {
		return noop, nil
	}
	exp, err := otlptracehttp.New(ctx) // endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
	if err != nil {
		return noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later sources win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default service name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", o.Service)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider( // sampler from OTEL_TRACES_SAMPLER
		sdktrace.WithBatcher(exp), // queue and batch sizes from OTEL_BSP_*
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}
