package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadWorkerDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.App() != "app" || c.Exchange != "domain_events" || c.QueueType != "quorum" ||
		c.Concurrency != 16 || c.Prefetch != 64 || c.RetryMaxAttempts != 5 || c.ShutdownTimeout != 25*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	wc := c.WorkerConfig(nil, nil)
	if len(wc.Retry.Delays) != 4 || wc.Retry.Delays[3] != 5*time.Minute {
		t.Fatalf("retry delays: %v", wc.Retry.Delays)
	}
	c, _ = LoadWorker(map[string]string{"FLY_APP_NAME": "fly-app"})
	if c.App() != "fly-app" {
		t.Fatalf("FLY_APP_NAME fallback: %q", c.App())
	}
	c, _ = LoadWorker(map[string]string{"FLY_APP_NAME": "fly-app", "APP_NAME": "mine"})
	if c.App() != "mine" {
		t.Fatalf("APP_NAME wins: %q", c.App())
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env     map[string]string
		varName string
		hint    string
	}{
		{map[string]string{"WORKER_PREFETCH": "abc"}, "WORKER_PREFETCH", "whole number"},
		{map[string]string{"WORKER_PREFETCH": "0"}, "WORKER_PREFETCH", "1..65535"},
		{map[string]string{"HANDLER_TIMEOUT": "30"}, "HANDLER_TIMEOUT", "duration"},
		{map[string]string{"RETRY_DELAYS": "1s,,2s"}, "RETRY_DELAYS", "empty"},
		{map[string]string{"RETRY_DELAYS": "1ms"}, "RETRY_DELAYS", "minimum"},
		{map[string]string{"RETRY_MAX_ATTEMPTS": "0"}, "RETRY_MAX_ATTEMPTS", "at least 1"},
		{map[string]string{"EVENT_TYPES": "CardAdded,*Event"}, "EVENT_TYPES", "whole dot-separated words"},
		{map[string]string{"QUEUE_TYPE": "stream"}, "QUEUE_TYPE", "quorum or classic"},
		{map[string]string{"TOPOLOGY": "lazy"}, "TOPOLOGY", "passive"},
		{map[string]string{"HANDLER": "email"}, "HANDLER", "webhook (POST to WEBHOOK_URL) or redis"},
		{map[string]string{"HANDLER": "redis", "REDIS_URL": "http://:pw123@cache:6379/0"}, "REDIS_URL", "redis://"},
		{map[string]string{"HANDLER": "redis", "REDIS_URL": "redis://:pw123@cache:port/0"}, "REDIS_URL", "not a Redis URL"},
		{map[string]string{"REDIS_CHANNEL": "events"}, "REDIS_CHANNEL", "must hold {type}"},
		{map[string]string{"HANDLER": "redis", "REDIS_CHANNEL": "events:{Type}"}, "REDIS_CHANNEL", "must hold {type}"},
		{map[string]string{"REDIS_CHANNEL": "events:{type}:{id}"}, "REDIS_CHANNEL", "only placeholder"},
		{map[string]string{"REDIS_TIMEOUT": "5"}, "REDIS_TIMEOUT", "duration"},
		{map[string]string{"REDIS_TIMEOUT": "-1s"}, "REDIS_TIMEOUT", "must be positive"},
		{map[string]string{"HANDLER": "webhook"}, "WEBHOOK_URL", "required"},
		{map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "ftp://u:tok3n@x"}, "WEBHOOK_URL", "http"},
		{map[string]string{"WEBHOOK_SECRET": "c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIz"}, "WEBHOOK_SECRET", "must start with whsec_"},
		{map[string]string{"WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIz whsec_pw123"}, "WEBHOOK_SECRET", "secret 2 of 2"},
		{map[string]string{"APP_NAME": "my app"}, "APP_NAME", "letters"},
		{map[string]string{"FLY_APP_NAME": "bad/name"}, "FLY_APP_NAME", "letters"},
		{map[string]string{"APP_NAME": "billing.dead"}, "APP_NAME", `app "billing"'s dead-letter queue`},
		{map[string]string{"FLY_APP_NAME": "billing.hops"}, "FLY_APP_NAME", `app "billing"'s exchange`},
		{map[string]string{"APP_NAME": "billing.retry.10s"}, "APP_NAME", `".retry."`},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL", "debug"},
		{map[string]string{"AMQP_URL": "http://u:pw123@host"}, "AMQP_URL", "AMQP URL"},
		{map[string]string{"DELIVERY_LIMIT": "-1"}, "DELIVERY_LIMIT", "at least 1"},
		{map[string]string{"QUORUM_INITIAL_GROUP_SIZE": "-1"}, "QUORUM_INITIAL_GROUP_SIZE", "must be 0"},
		{map[string]string{"QUORUM_INITIAL_GROUP_SIZE": "three"}, "QUORUM_INITIAL_GROUP_SIZE", ""},
		{map[string]string{"METRICS_ADDR": "9090"}, "METRICS_ADDR", "host:port"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER", "otlp"},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"},
		{map[string]string{"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED", "true or false"},
	}
	for _, tt := range tests {
		_, err := LoadWorker(tt.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tt.varName || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("LoadWorker(%v) = %v; want an error naming %s with %q", tt.env, err, tt.varName, tt.hint)
		}
		if err != nil && (strings.Contains(err.Error(), "pw123") || strings.Contains(err.Error(), "tok3n") || strings.Contains(err.Error(), "c2Vj")) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
	for env, name := range map[string]string{"PUBLISH_WINDOW": "x", "PUBLISH_TIMEOUT": "0s", "PUBLISHER_MAX_BODY": "0",
		"PUBLISH_DEADLINE": "-1s",
		"METRICS_ADDR":     "localhost", "OTEL_TRACES_EXPORTER": "zipkin"} {
		_, err := LoadPublisher(map[string]string{env: name})
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != env {
			t.Errorf("LoadPublisher(%s=%s) = %v; want an error naming it", env, name, err)
		}
	}
}

func TestTelemetry_Defaults(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != ":9090" {
		t.Errorf("METRICS_ADDR default %q, want :9090", c.MetricsAddr)
	}
	if o := c.Tracing("svc"); o.Enabled() || o.Service != "svc" {
		t.Errorf("tracing %+v: export must be off by default", o)
	}
	c, err = LoadWorker(map[string]string{"METRICS_ADDR": "off", "OTEL_TRACES_EXPORTER": "OTLP",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"})
	if err == nil {
		t.Fatal("grpc accepted")
	}
	c, err = LoadWorker(map[string]string{"METRICS_ADDR": "off", "OTEL_TRACES_EXPORTER": "OTLP"})
	if err != nil || !c.Tracing("").Enabled() {
		t.Fatalf("OTLP: %v %+v", err, c.Tracing(""))
	}
	c, _ = LoadWorker(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"})
	if c.Tracing("").Enabled() {
		t.Error("OTEL_SDK_DISABLED=TRUE did not turn export off")
	}
}

// An unset or empty METRICS_ADDR is the default, which may fall back to a
// free port; any value an operator wrote, even ":9090", is not.
func TestTelemetry_MetricsAddrDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		environ map[string]string
		want    bool
	}{
		{map[string]string{}, true},
		{map[string]string{"METRICS_ADDR": ""}, true},
		{map[string]string{"METRICS_ADDR": ":9090"}, false},
		{map[string]string{"METRICS_ADDR": "127.0.0.1:9191"}, false},
	} {
		w, werr := LoadWorker(tc.environ)
		p, perr := LoadPublisher(tc.environ)
		h, herr := LoadTelemetry(tc.environ)
		if werr != nil || perr != nil || herr != nil {
			t.Fatalf("%v: %v %v %v", tc.environ, werr, perr, herr)
		}
		if w.MetricsAddrDefault != tc.want || p.MetricsAddrDefault != tc.want || h.MetricsAddrDefault != tc.want {
			t.Errorf("%v: MetricsAddrDefault worker %v publisher %v telemetry %v, want %v", tc.environ,
				w.MetricsAddrDefault, p.MetricsAddrDefault, h.MetricsAddrDefault, tc.want)
		}
		if w.MetricsAddr == "" {
			t.Errorf("%v: METRICS_ADDR empty after load", tc.environ)
		}
	}
	if App(map[string]string{"FLY_APP_NAME": "fly"}) != "fly" || App(nil) != "app" {
		t.Error("App does not follow APP_NAME, FLY_APP_NAME, app")
	}
}

func TestLogger_DurationsAsText(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	Broker{LogLevel: "info"}.Logger(&b).Info("x", "delay", 1500*time.Millisecond)
	if !strings.Contains(b.String(), `"delay":"1.5s"`) {
		t.Errorf("log line %s, want the delay as text", b.String())
	}
}

// TestLoadPublisher_Timeouts: PUBLISH_TIMEOUT keeps its 10s default for
// serve, publish waits a minute without progress unless it is set, and
// PUBLISH_DEADLINE is off unless set.
func TestLoadPublisher_Timeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env                       map[string]string
		serve, progress, deadline time.Duration
	}{
		{map[string]string{}, 10 * time.Second, time.Minute, 0},
		{map[string]string{"PUBLISH_TIMEOUT": "3s"}, 3 * time.Second, 3 * time.Second, 0},
		{map[string]string{"PUBLISH_DEADLINE": "2h"}, 10 * time.Second, time.Minute, 2 * time.Hour},
		{map[string]string{"PUBLISH_DEADLINE": "0"}, 10 * time.Second, time.Minute, 0},
	}
	for _, tt := range tests {
		c, err := LoadPublisher(tt.env)
		if err != nil {
			t.Fatalf("LoadPublisher(%v): %v", tt.env, err)
		}
		if c.Timeout != tt.serve || c.ProgressTimeout != tt.progress || c.Deadline != tt.deadline {
			t.Errorf("LoadPublisher(%v): Timeout %v ProgressTimeout %v Deadline %v, want %v %v %v",
				tt.env, c.Timeout, c.ProgressTimeout, c.Deadline, tt.serve, tt.progress, tt.deadline)
		}
	}
	for _, v := range []string{"soon", "-5m"} {
		_, err := LoadPublisher(map[string]string{"PUBLISH_DEADLINE": v})
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "PUBLISH_DEADLINE" {
			t.Errorf("PUBLISH_DEADLINE=%s: %v, want an error naming PUBLISH_DEADLINE", v, err)
		}
	}
}

// worker dlq reads with the worker's body limit, and only that of its
// settings: a broken HANDLER must not stop it.
func TestLoadInspect(t *testing.T) {
	t.Parallel()
	c, err := LoadInspect(map[string]string{"HANDLER": "nonsense", "WORKER_MAX_BODY": "1024"})
	if err != nil || c.MaxBody != 1024 {
		t.Fatalf("LoadInspect = %+v, %v", c, err)
	}
	var ce *Error
	if _, err := LoadInspect(map[string]string{"WORKER_MAX_BODY": "0"}); !errors.As(err, &ce) || ce.Var != "WORKER_MAX_BODY" {
		t.Errorf("WORKER_MAX_BODY=0: %v, want an error naming it", err)
	}
	if _, err := LoadInspect(map[string]string{"APP_NAME": "no spaces"}); !errors.As(err, &ce) || ce.Var != "APP_NAME" {
		t.Errorf("APP_NAME=no spaces: %v, want an error naming it", err)
	}
}

// The library reads a zero field as its default; in the environment the
// default is asked for by leaving the variable unset (or empty), so a 0
// that was written is refused, by the library's own check, naming the
// variable.
func TestLoad_WrittenZeroIsRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"WORKER_CONCURRENCY", "WORKER_PREFETCH", "HANDLER_TIMEOUT",
		"RETRY_MAX_ATTEMPTS", "DELIVERY_LIMIT", "WORKER_MAX_BODY", "WEBHOOK_TIMEOUT", "REDIS_TIMEOUT"} {
		var ce *Error
		if _, err := LoadWorker(map[string]string{name: "0"}); !errors.As(err, &ce) || ce.Var != name {
			t.Errorf("%s=0: %v, want an error naming it", name, err)
		}
		if _, err := LoadWorker(map[string]string{name: ""}); err != nil {
			t.Errorf("%s empty: %v, want the default", name, err)
		}
	}
	var ce *Error
	if _, err := LoadPublisher(map[string]string{"PUBLISH_WINDOW": "0"}); !errors.As(err, &ce) || ce.Var != "PUBLISH_WINDOW" ||
		!strings.Contains(err.Error(), "1..65535") {
		t.Errorf("PUBLISH_WINDOW=0: %v, want an error naming it and the range", err)
	}
	c, err := LoadWorker(map[string]string{"WORKER_CONCURRENCY": "100"})
	if err != nil || c.WorkerConfig(nil, nil).Concurrency != 100 {
		t.Fatalf("WORKER_CONCURRENCY=100: %v", err)
	}
	if _, err := LoadWorker(map[string]string{"WORKER_CONCURRENCY": "10001"}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "1..10000") {
		t.Errorf("WORKER_CONCURRENCY=10001: %v, want the library's bound", err)
	}
}

// HANDLER=redis's settings: the defaults, the pool sized to the
// concurrency, and REDIS_URL checked only when HANDLER=redis (a relay's
// URL in a shared environment does not stop a log worker).
func TestRedisConfig(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(map[string]string{"HANDLER": "redis", "WORKER_CONCURRENCY": "40"})
	if err != nil {
		t.Fatal(err)
	}
	rc := c.RedisConfig(nil)
	if rc.URL != "redis://127.0.0.1:6379/0" || rc.Channel != "events:{type}" || rc.Timeout != 5*time.Second || rc.PoolSize != 40 {
		t.Errorf("RedisConfig %+v", rc)
	}
	if _, err := LoadWorker(map[string]string{"HANDLER": "log", "REDIS_URL": "nats://x"}); err != nil {
		t.Errorf("HANDLER=log with a REDIS_URL it does not use: %v", err)
	}
	c, err = LoadWorker(map[string]string{"HANDLER": "redis", "REDIS_URL": "rediss://:pw@cache:6380/2", "REDIS_CHANNEL": "live:{type}", "REDIS_TIMEOUT": "750ms"})
	if err != nil {
		t.Fatal(err)
	}
	if rc := c.RedisConfig(nil); rc.URL != "rediss://:pw@cache:6380/2" || rc.Channel != "live:{type}" || rc.Timeout != 750*time.Millisecond {
		t.Errorf("RedisConfig %+v", rc)
	}
}

func TestWebhookConfig_Secrets(t *testing.T) {
	t.Parallel()
	const a, b = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIz"
	for _, tt := range []struct {
		env  string
		want int
	}{{"", 0}, {a, 1}, {" " + a + "  " + b + " ", 2}} {
		c, err := LoadWorker(map[string]string{"HANDLER": "webhook", "WEBHOOK_URL": "https://x/", "WEBHOOK_SECRET": tt.env})
		if err != nil {
			t.Fatalf("WEBHOOK_SECRET=%q: %v", tt.env, err)
		}
		if got := len(c.WebhookConfig().Secrets); got != tt.want {
			t.Errorf("WEBHOOK_SECRET=%q: %d secrets, want %d", tt.env, got, tt.want)
		}
	}
}

// TestAppName_CollisionsRefusedWhereTheNameMakesQueues: an app name that
// would be a name of another app's topology (amqp.ValidateAppName) is
// refused by the worker and `worker dlq`, whose queues it names, and
// accepted by the publisher, where it is only the messages' app_id.
func TestAppName_CollisionsRefusedWhereTheNameMakesQueues(t *testing.T) {
	t.Parallel()
	env := map[string]string{"APP_NAME": "billing.dead"}
	var ce *Error
	if _, err := LoadWorker(env); !errors.As(err, &ce) || ce.Var != "APP_NAME" {
		t.Errorf("LoadWorker(APP_NAME=billing.dead) = %v, want an error naming APP_NAME", err)
	}
	if _, err := LoadInspect(env); !errors.As(err, &ce) || ce.Var != "APP_NAME" {
		t.Errorf("LoadInspect(APP_NAME=billing.dead) = %v, want an error naming APP_NAME", err)
	}
	if _, err := LoadPublisher(env); err != nil {
		t.Errorf("LoadPublisher(APP_NAME=billing.dead) = %v, want nil: app_id makes no queue", err)
	}
}

// QUORUM_INITIAL_GROUP_SIZE reaches both libraries' configs; unlike the
// settings above, a written 0 is a value (the broker's default), accepted.
func TestLoad_QuorumInitialGroupSize(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "0", "3", "5"} {
		want := 0
		if v != "" {
			want = int(v[0] - '0')
		}
		w, err := LoadWorker(map[string]string{"QUORUM_INITIAL_GROUP_SIZE": v})
		if err != nil {
			t.Fatalf("LoadWorker %q: %v", v, err)
		}
		if got := w.WorkerConfig(nil, nil).QuorumInitialGroupSize; got != want {
			t.Errorf("worker %q: QuorumInitialGroupSize %d, want %d", v, got, want)
		}
		p, err := LoadPublisher(map[string]string{"QUORUM_INITIAL_GROUP_SIZE": v})
		if err != nil {
			t.Fatalf("LoadPublisher %q: %v", v, err)
		}
		if got := p.PublisherConfig(nil, nil).QuorumInitialGroupSize; got != want {
			t.Errorf("publisher %q: QuorumInitialGroupSize %d, want %d", v, got, want)
		}
	}
	var ce *Error
	if _, err := LoadPublisher(map[string]string{"QUORUM_INITIAL_GROUP_SIZE": "-2"}); !errors.As(err, &ce) || ce.Var != "QUORUM_INITIAL_GROUP_SIZE" {
		t.Errorf("publisher -2: %v, want an error naming QUORUM_INITIAL_GROUP_SIZE", err)
	}
}
