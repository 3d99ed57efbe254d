package amqp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// The zero Config is the documented defaults, filled in from the exported
// constants; internal/config and the README table are checked against them.
func TestConfig_WithDefaults(t *testing.T) {
	t.Parallel()
	w := amqp.WorkerConfig{}.WithDefaults()
	if w.URL != amqp.DefaultURL || w.Exchange != amqp.DefaultExchange || w.QueueType != amqp.QueueQuorum ||
		w.Concurrency != amqp.DefaultConcurrency || w.Prefetch != amqp.DefaultPrefetch ||
		w.HandlerTimeout != amqp.DefaultHandlerTimeout || w.DeliveryLimit != amqp.DefaultDeliveryLimit ||
		w.MaxBody != amqp.DefaultMaxBody || w.Heartbeat != amqp.DefaultHeartbeat ||
		w.SampleInterval != amqp.DefaultSampleInterval || w.Logger == nil ||
		w.Retry.MaxAttempts != retry.DefaultMaxAttempts || len(w.Retry.Delays) != len(retry.DefaultDelays) {
		t.Errorf("WorkerConfig{}.WithDefaults() = %+v", w)
	}
	if w := (amqp.WorkerConfig{Concurrency: 100}).WithDefaults(); w.Prefetch != 100 {
		t.Errorf("Prefetch %d, want it raised to Concurrency 100", w.Prefetch)
	}
	p := amqp.PublisherConfig{}.WithDefaults()
	if p.URL != amqp.DefaultURL || p.Exchange != amqp.DefaultExchange || p.Window != amqp.DefaultWindow ||
		p.Heartbeat != amqp.DefaultHeartbeat || p.Logger == nil {
		t.Errorf("PublisherConfig{}.WithDefaults() = %+v", p)
	}
	if err := (amqp.PublisherConfig{}).WithDefaults().Validate(); err != nil {
		t.Errorf("the default PublisherConfig is refused: %v", err)
	}
	if err := (amqp.WorkerConfig{App: "a"}).WithDefaults().Validate(); err != nil {
		t.Errorf("the default WorkerConfig is refused: %v", err)
	}
}

// Validate names the field at fault in a *ConfigError, so that
// internal/config names its variable without checking the value itself.
// Validate sees zero as a value: a caller that fills in the defaults first
// (WithDefaults) learns that an explicit 0 is out of range.
func TestConfig_ValidateNamesTheField(t *testing.T) {
	t.Parallel()
	w := func(f func(*amqp.WorkerConfig)) amqp.WorkerConfig {
		c := amqp.WorkerConfig{App: "a"}.WithDefaults()
		f(&c)
		return c
	}
	pub := func(f func(*amqp.PublisherConfig)) amqp.PublisherConfig {
		c := amqp.PublisherConfig{}.WithDefaults()
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		err    error
		field  string
		reason string
	}{
		{"app", w(func(c *amqp.WorkerConfig) { c.App = "a b" }).Validate(), "App", "letters"},
		{"exchange", w(func(c *amqp.WorkerConfig) { c.Exchange = strings.Repeat("x", 201) }).Validate(), "Exchange", "1-200"},
		{"queue type", w(func(c *amqp.WorkerConfig) { c.QueueType = "stream" }).Validate(), "QueueType", "quorum or classic"},
		{"concurrency 0", w(func(c *amqp.WorkerConfig) { c.Concurrency = 0 }).Validate(), "Concurrency", "1..10000"},
		{"concurrency high", w(func(c *amqp.WorkerConfig) { c.Concurrency = 10001 }).Validate(), "Concurrency", "1..10000"},
		{"prefetch 0", w(func(c *amqp.WorkerConfig) { c.Prefetch = 0 }).Validate(), "Prefetch", "1..65535"},
		{"prefetch high", w(func(c *amqp.WorkerConfig) { c.Prefetch = 65536 }).Validate(), "Prefetch", "1..65535"},
		{"handler timeout", w(func(c *amqp.WorkerConfig) { c.HandlerTimeout = 0 }).Validate(), "HandlerTimeout", "positive"},
		{"delivery limit", w(func(c *amqp.WorkerConfig) { c.DeliveryLimit = -1 }).Validate(), "DeliveryLimit", "at least 1"},
		{"max body", w(func(c *amqp.WorkerConfig) { c.MaxBody = 0 }).Validate(), "MaxBody", "positive"},
		{"sample interval", w(func(c *amqp.WorkerConfig) { c.SampleInterval = -time.Second }).Validate(), "SampleInterval", "positive"},
		{"event type", w(func(c *amqp.WorkerConfig) { c.EventTypes = []string{"A", "*Event"} }).Validate(), "EventTypes", "whole dot-separated words"},
		{"max attempts", w(func(c *amqp.WorkerConfig) { c.Retry.MaxAttempts = 0 }).Validate(), "Retry.MaxAttempts", "at least 1"},
		{"delays", w(func(c *amqp.WorkerConfig) { c.Retry.Delays = []time.Duration{time.Millisecond} }).Validate(), "Retry.Delays", "minimum"},
		{"worker url", w(func(c *amqp.WorkerConfig) { c.URL = "http://u:pw123@host/" }).Validate(), "URL", "scheme"},
		{"window 0", pub(func(c *amqp.PublisherConfig) { c.Window = 0 }).Validate(), "Window", "1..65535"},
		{"publisher exchange", pub(func(c *amqp.PublisherConfig) { c.Exchange = " " }).Validate(), "Exchange", "1-200"},
		{"publisher url", pub(func(c *amqp.PublisherConfig) { c.URL = "ftp://u:pw123@host/" }).Validate(), "URL", "scheme"},
		{"tls on amqp://", pub(func(c *amqp.PublisherConfig) { c.TLS.ServerName = "rabbit" }).Validate(), "TLS.ServerName", "amqps://"},
		{"tls ca file", w(func(c *amqp.WorkerConfig) {
			c.URL = "amqps://u:pw123@host/"
			c.TLS.CAFile = "/nonexistent/ca.pem"
		}).Validate(), "TLS.CAFile", "no such file"},
		{"tls key alone", pub(func(c *amqp.PublisherConfig) {
			c.URL = "amqps://u:pw123@host/"
			c.TLS.KeyFile = "/nonexistent/key.pem"
		}).Validate(), "TLS.CertFile", "set both or neither"},
	}
	for _, tt := range tests {
		var ce *amqp.ConfigError
		switch {
		case !errors.As(tt.err, &ce) || !errors.Is(tt.err, amqp.ErrInvalidConfig):
			t.Errorf("%s: %v, want a *ConfigError and ErrInvalidConfig", tt.name, tt.err)
		case ce.Field != tt.field || !strings.Contains(ce.Reason, tt.reason):
			t.Errorf("%s: field %q reason %q, want %q and %q", tt.name, ce.Field, ce.Reason, tt.field, tt.reason)
		case strings.Contains(tt.err.Error(), "pw123"):
			t.Errorf("%s: the error shows the password: %v", tt.name, tt.err)
		}
	}
	var ue *amqp.URLError
	if err := w(func(c *amqp.WorkerConfig) { c.URL = "amqp://u:pw@host:99999/" }).Validate(); !errors.As(err, &ue) {
		t.Errorf("URL: %v, want it to wrap the *URLError", err)
	}
	if err := w(func(c *amqp.WorkerConfig) { c.Retry.MaxAttempts = 0 }).Validate(); !errors.Is(err, retry.ErrInvalidPolicy) {
		t.Errorf("Retry.MaxAttempts: %v, want it to wrap retry.ErrInvalidPolicy", err)
	}
}

// NewPublisher and NewWorker refuse with the same *ConfigError, and read a
// zero field as its default rather than refusing it.
func TestConfig_NewRefusesWithConfigError(t *testing.T) {
	t.Parallel()
	var ce *amqp.ConfigError
	if _, err := amqp.NewWorker(amqp.WorkerConfig{App: "a", Concurrency: 20000}, event.HandlerFunc(nil)); !errors.As(err, &ce) || ce.Field != "Concurrency" {
		t.Errorf("NewWorker(Concurrency 20000) = %v, want a *ConfigError for Concurrency", err)
	}
	if _, err := amqp.NewPublisher(amqp.PublisherConfig{Window: 70000}); !errors.As(err, &ce) || ce.Field != "Window" {
		t.Errorf("NewPublisher(Window 70000) = %v, want a *ConfigError for Window", err)
	}
	if _, err := amqp.NewPublisher(amqp.PublisherConfig{Exchange: " "}); !errors.As(err, &ce) || ce.Field != "Exchange" {
		t.Errorf("NewPublisher(Exchange \" \") = %v, want a *ConfigError for Exchange", err)
	}
}
