// Package tracing carries OpenTelemetry trace context across the broker and
// sets up span export.
//
// Propagation is always on and needs no setup: a publish writes the W3C
// traceparent and tracestate of its context into the message's AMQP headers
// (Inject), a worker continues that context for the handler (Extract), and
// the webhook handler passes it on in the HTTP request's headers. So an app on
// either side that traces sees one trace, even when eventfleet itself exports
// nothing. Retries and dead letters copy the headers, so every attempt stays
// in the trace of the original publish.
//
// Exporting spans is off by default. Setup turns it on when
// OTEL_TRACES_EXPORTER=otlp: spans go to an OTLP/HTTP collector configured by
// the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout),
// named by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, sampled by
// OTEL_TRACES_SAMPLER. Spans follow the OpenTelemetry messaging conventions
// for RabbitMQ: "publish <exchange>" (producer), "process <queue>"
// (consumer) and "settle <queue>" for moving an event to a retry or
// dead-letter queue, with messaging.system=rabbitmq, the destination, routing
// key and message id.
package tracing
