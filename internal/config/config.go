// Package config reads the binaries' settings from the environment with
// caarlos0/env and checks them. Every error names the variable at fault, so
// `cmd/*` can print it and exit with code 2.
//
// The library's settings (amqp.WorkerConfig, amqp.PublisherConfig) keep
// their defaults and their checks in the library: this package fills its
// structs from WithDefaults, maps the environment onto them and asks
// Validate, turning the *amqp.ConfigError's field into the variable's name.
// It checks only what the library does not know: parsing, and the
// binaries' own settings.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisfanout"
	"github.com/eventfleet/eventfleet/retry"
	"github.com/eventfleet/eventfleet/tracing"
	"github.com/eventfleet/eventfleet/webhook"
)

// Error is an invalid setting.
type Error struct {
	Var    string // the environment variable, e.g. "WORKER_PREFETCH"
	Value  string // its value as given (redacted for AMQP_URL)
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s=%q: %s", e.Var, e.Value, e.Reason)
}

// Broker holds the settings both binaries share.
type Broker struct {
	// AMQPURL is the broker's URL, or several separated by commas (the
	// nodes of a cluster; see amqp.PublisherConfig.URL); keep it in a
	// secret, it holds the password.
	AMQPURL string `env:"AMQP_URL"`
	// The TLS settings of an amqps:// AMQP_URL (amqp.TLSFiles): PEM files
	// of the CA, of a client certificate and its key, and the name the
	// broker's certificate must carry. Each set variable wins over the
	// URL parameter it stands for (cacertfile, certfile/keyfile,
	// server_name_indication); unset, the URL's parameter applies, and the
	// server name defaults to the URL's host.
	TLSCAFile     string `env:"AMQP_TLS_CA_FILE"`
	TLSCertFile   string `env:"AMQP_TLS_CERT_FILE"`
	TLSKeyFile    string `env:"AMQP_TLS_KEY_FILE"`
	TLSServerName string `env:"AMQP_TLS_SERVER_NAME"`
	// Exchange is the domain exchange.
	Exchange string `env:"EXCHANGE"`
	// Topology is declare (the shared exchange and unrouted queue are
	// declared) or passive (only checked, for a broker user without
	// configure permission on them; docs/least-privilege.md).
	Topology string `env:"TOPOLOGY"`
	// QuorumInitialGroupSize is the replica count of the quorum queues a
	// publisher or worker creates (x-quorum-initial-group-size); 0, the
	// default, leaves it to the broker (3, or every node of a smaller
	// cluster). Existing queues keep theirs.
	QuorumInitialGroupSize int `env:"QUORUM_INITIAL_GROUP_SIZE"`
	// AppName names this app; FlyAppName is its fallback, then "app".
	AppName    string `env:"APP_NAME"`
	FlyAppName string `env:"FLY_APP_NAME"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL"`
}

// TLS is the AMQP_TLS_* settings for the library.
func (b Broker) TLS() amqp.TLSFiles {
	return amqp.TLSFiles{CAFile: b.TLSCAFile, CertFile: b.TLSCertFile, KeyFile: b.TLSKeyFile, ServerName: b.TLSServerName}
}

// App is APP_NAME, else FLY_APP_NAME, else "app".
func (b Broker) App() string {
	switch {
	case b.AppName != "":
		return b.AppName
	case b.FlyAppName != "":
		return b.FlyAppName
	default:
		return "app"
	}
}

// Level parses LogLevel.
func (b Broker) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(b.LogLevel)) // checked in validate
	return l
}

// Logger is the binaries' logger: JSON lines on w at LOG_LEVEL, durations
// written as text ("1.5s"), not as nanoseconds.
func (b Broker) Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: b.Level(),
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		},
	}))
}

func (b Broker) validate() error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(b.LogLevel)); err != nil {
		return &Error{"LOG_LEVEL", b.LogLevel, "use debug, info, warn or error"}
	}
	if err := amqp.ValidateTLS(b.AMQPURL, b.TLS()); err != nil {
		var ue *amqp.URLError
		if errors.As(err, &ue) {
			return urlError(amqp.RedactURL(b.AMQPURL), err)
		}
		return tlsError(err)
	}
	// The URL's TLS parameters that the variables replace are not checked.
	if err := amqp.ValidateURLWith(b.AMQPURL, b.TLS()); err != nil {
		return urlError(amqp.RedactURL(b.AMQPURL), err)
	}
	if err := amqp.ValidateExchange(b.Exchange); err != nil {
		return &Error{"EXCHANGE", b.Exchange, err.Error()}
	}
	if b.Topology != amqp.TopologyDeclare && b.Topology != amqp.TopologyPassive {
		return &Error{"TOPOLOGY", b.Topology, "use " + amqp.TopologyDeclare + " (the default: declare the shared exchange and unrouted queue) or " +
			amqp.TopologyPassive + " (only check that they exist, for a broker user without configure permission on them)"}
	}
	return nil
}

// Telemetry holds the settings for metrics, health checks and tracing that
// `worker run` and `publisher serve` share.
type Telemetry struct {
	// MetricsAddr is where /metrics, /healthz and /readyz are served;
	// "off" serves nothing there. Unset or empty means DefaultMetricsAddr.
	MetricsAddr string `env:"METRICS_ADDR"`
	// MetricsAddrDefault is true when METRICS_ADDR was unset or empty: a
	// taken default port then falls back to a free one, and the health
	// commands look for their process's recorded address.
	MetricsAddrDefault bool
	// The OpenTelemetry SDK reads the other OTEL_* variables itself
	// (endpoint, headers, service name, sampler); these are the ones that
	// decide whether and how spans are exported, checked here so a typo
	// fails at start rather than silently exporting nothing.
	TracesExporter     string `env:"OTEL_TRACES_EXPORTER"`
	OTLPProtocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	OTLPTracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	SDKDisabled        string `env:"OTEL_SDK_DISABLED"`
}

// MetricsOff is the METRICS_ADDR value that turns the endpoint off.
const MetricsOff = "off"

func (t *Telemetry) noteDefault(environ map[string]string) {
	t.MetricsAddrDefault = environ["METRICS_ADDR"] == ""
}

// App is the app name environ gives (APP_NAME, else FLY_APP_NAME, else
// "app"), unchecked: for the health commands, which only compare it.
func App(environ map[string]string) string {
	return Broker{AppName: environ["APP_NAME"], FlyAppName: environ["FLY_APP_NAME"]}.App()
}

// Tracing returns the options for tracing.Setup; service is the default
// service.name.
func (t Telemetry) Tracing(service string) tracing.Options {
	proto := t.OTLPTracesProtocol
	if proto == "" {
		proto = t.OTLPProtocol
	}
	return tracing.Options{
		Exporter: strings.ToLower(strings.TrimSpace(t.TracesExporter)),
		Protocol: strings.TrimSpace(proto),
		Disabled: strings.EqualFold(strings.TrimSpace(t.SDKDisabled), "true"),
		Service:  service,
	}
}

func (t Telemetry) validate() error {
	if t.MetricsAddr != MetricsOff {
		if _, _, err := net.SplitHostPort(t.MetricsAddr); err != nil {
			return &Error{"METRICS_ADDR", t.MetricsAddr, `use host:port or :port, e.g. :9090, or "off"`}
		}
	}
	switch strings.ToLower(strings.TrimSpace(t.SDKDisabled)) {
	case "", "true", "false":
	default:
		return &Error{"OTEL_SDK_DISABLED", t.SDKDisabled, "use true or false"}
	}
	o := t.Tracing("")
	switch o.Exporter {
	case "", tracing.ExporterNone, tracing.ExporterOTLP:
	default:
		return &Error{"OTEL_TRACES_EXPORTER", t.TracesExporter, "use otlp (export spans over OTLP/HTTP) or none (the default)"}
	}
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", t.OTLPTracesProtocol},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", t.OTLPProtocol},
	} {
		if p := strings.TrimSpace(v.value); p != "" && p != "http/protobuf" {
			return &Error{v.name, v.value, "only http/protobuf is built in"}
		}
	}
	return nil
}

// Publisher holds cmd/publisher's settings.
type Publisher struct {
	Broker
	Telemetry
	// Addr is where `publisher serve` listens. Defaults to
	// DefaultPublisherAddr.
	Addr string `env:"PUBLISHER_ADDR"`
	// Window is the number of publishes in flight awaiting confirms.
	// Defaults to amqp.DefaultWindow.
	Window int `env:"PUBLISH_WINDOW"`
	// Timeout bounds waiting for the confirms of one `serve` request.
	// Defaults to DefaultPublishTimeout.
	Timeout time.Duration `env:"PUBLISH_TIMEOUT"`
	// ProgressTimeout is how long a `publish` run may go without any confirm
	// while events wait (for a connection or their confirm) before it gives
	// up: PUBLISH_TIMEOUT when set, else DefaultProgressTimeout.
	ProgressTimeout time.Duration `env:"-"`
	// Deadline bounds a whole `publish` run. Defaults to 0: no bound.
	Deadline time.Duration `env:"PUBLISH_DEADLINE"`
	// MaxBody is the largest POST /events body in bytes. Defaults to
	// DefaultPublisherMaxBody.
	MaxBody int64 `env:"PUBLISHER_MAX_BODY"`
	// ShutdownTimeout bounds the drain on SIGTERM/SIGINT. Defaults to
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT"`
	// Auth is how `serve` authenticates callers: AuthKeys (the default) or
	// AuthNone.
	Auth string `env:"PUBLISHER_AUTH"`
	// KeysText and KeysFile hold the API key lines (ingest.ParseKeys); at
	// most one may be set. KeysText is a secret in production.
	KeysText string `env:"PUBLISHER_KEYS"`
	KeysFile string `env:"PUBLISHER_KEYS_FILE"`
	// Keys are the parsed key lines, filled in by LoadKeys.
	Keys *ingest.Keys `env:"-"`
	// MaxEvents, MaxInFlight, Rate and MaxDepth are the ingest's limits;
	// they default to ingest's.
	MaxEvents   int     `env:"PUBLISHER_MAX_EVENTS"`
	MaxInFlight int     `env:"PUBLISHER_MAX_IN_FLIGHT"`
	Rate        float64 `env:"PUBLISHER_RATE"`
	MaxDepth    int     `env:"PUBLISHER_MAX_DEPTH"`
}

// The PUBLISHER_AUTH values.
const (
	// AuthKeys requires an API key from PUBLISHER_KEYS or PUBLISHER_KEYS_FILE.
	AuthKeys = "keys"
	// AuthNone accepts every caller: a local demo only.
	AuthNone = "none"
)

// ErrNoKeys: `publisher serve` authenticates callers (PUBLISHER_AUTH=keys,
// the default) but no key is configured.
var ErrNoKeys = errors.New("PUBLISHER_AUTH=keys (the default) but no API key is configured: " +
	"make one with `publisher key new CALLER` and put the line it prints in PUBLISHER_KEYS " +
	"(on Fly: fly secrets set PUBLISHER_KEYS='...') or in the file PUBLISHER_KEYS_FILE names; " +
	"PUBLISHER_AUTH=none accepts anyone (a local demo only)")

// LoadKeys reads the API keys from PUBLISHER_KEYS or PUBLISHER_KEYS_FILE
// into c.Keys. Only `publisher serve` needs them, so LoadPublisher leaves
// them alone and a `publish` run never reads a file it does not use. With
// PUBLISHER_AUTH=keys it returns ErrNoKeys when there is no key.
func (c *Publisher) LoadKeys() error {
	text, from := c.KeysText, "PUBLISHER_KEYS"
	switch {
	case c.KeysText != "" && c.KeysFile != "":
		return &Error{"PUBLISHER_KEYS_FILE", c.KeysFile, "PUBLISHER_KEYS is set too: set one of them"}
	case c.KeysFile != "":
		b, err := os.ReadFile(c.KeysFile)
		if err != nil {
			return &Error{"PUBLISHER_KEYS_FILE", c.KeysFile, fmt.Sprintf("cannot read it: %v", err)}
		}
		text, from = string(b), "PUBLISHER_KEYS_FILE"
	}
	keys, err := ingest.ParseKeys(text)
	if err != nil {
		value := c.KeysFile
		if from == "PUBLISHER_KEYS" {
			value = "<hidden>" // a secret: the error names the line
		}
		return &Error{from, value, err.Error()}
	}
	c.Keys = keys
	if c.Auth == AuthKeys && keys.Len() == 0 {
		return ErrNoKeys
	}
	return nil
}

// IngestConfig maps the settings to the ingest's configuration; LoadKeys
// must have run for the keys.
func (c Publisher) IngestConfig(p ingest.Publisher, log *slog.Logger) ingest.Config {
	auth := ingest.AuthKeys
	if c.Auth == AuthNone {
		auth = ingest.AuthNone
	}
	return ingest.Config{
		Publisher:   p,
		Timeout:     c.Timeout,
		MaxBody:     c.MaxBody,
		MaxEvents:   c.MaxEvents,
		MaxInFlight: c.MaxInFlight,
		Rate:        c.Rate,
		MaxDepth:    c.MaxDepth,
		Auth:        auth,
		Keys:        c.Keys,
		Logger:      log,
	}
}

// Worker holds cmd/worker's settings. The fields that amqp.WorkerConfig
// has too take their defaults from it (see defaultWorker).
type Worker struct {
	Broker
	Telemetry
	EventTypes       []string      `env:"EVENT_TYPES" envSeparator:","`
	QueueType        string        `env:"QUEUE_TYPE"`
	Concurrency      int           `env:"WORKER_CONCURRENCY"`
	Prefetch         int           `env:"WORKER_PREFETCH"`
	HandlerTimeout   time.Duration `env:"HANDLER_TIMEOUT"`
	RetryDelays      string        `env:"RETRY_DELAYS"`
	RetryMaxAttempts int           `env:"RETRY_MAX_ATTEMPTS"`
	DeliveryLimit    int           `env:"DELIVERY_LIMIT"`
	MaxBody          int           `env:"WORKER_MAX_BODY"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT"`
	Handler          string        `env:"HANDLER"`
	WebhookURL       string        `env:"WEBHOOK_URL"`
	WebhookTimeout   time.Duration `env:"WEBHOOK_TIMEOUT"`
	// WebhookSecret holds whsec_ signing secrets, space-separated; keep it
	// in a secret store. Never echoed, not even in an error.
	WebhookSecret string `env:"WEBHOOK_SECRET"`
	// HANDLER=redis (package redisfanout): the Redis, redis:// or rediss://
	// (it may hold the password: never echoed), the channel template
	// ("{type}" replaced by the event type) and the bound on one PUBLISH.
	RedisURL     string        `env:"REDIS_URL"`
	RedisChannel string        `env:"REDIS_CHANNEL"`
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT"`
}

// Inspect holds `worker dlq`'s settings: the shared ones, and the worker's
// body limit, so that it reads dead letters as the worker would.
type Inspect struct {
	Broker
	MaxBody int `env:"WORKER_MAX_BODY"`
}

// LoadInspect reads and checks Inspect, whatever the worker's handler
// settings say.
func LoadInspect(environ map[string]string) (Inspect, error) {
	c := defaultInspect()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	if err := c.Broker.validate(); err != nil {
		return c, err
	}
	if err := validateApp(c.App(), environ); err != nil {
		return c, err
	}
	// The worker's own check of its body limit, on a worker that has only it set.
	wc := amqp.WorkerConfig{App: c.App()}.WithDefaults()
	wc.MaxBody = c.MaxBody
	if err := wc.Validate(); err != nil {
		return c, libraryError(err, environ, nil)
	}
	return c, nil
}

// LoadBroker reads and checks only the settings both binaries share, for
// tools such as `worker dlq` that must work whatever the worker's handler
// settings say.
func LoadBroker(environ map[string]string) (Broker, error) {
	c := defaultBroker()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, validateApp(c.App(), environ)
}

// LoadTelemetry reads and checks only the telemetry settings, for the
// binaries' health subcommands.
func LoadTelemetry(environ map[string]string) (Telemetry, error) {
	c := defaultTelemetry()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	c.noteDefault(environ)
	return c, c.validate()
}

// Environ returns the process environment as a map, for Load*.
func Environ() map[string]string { return env.ToMap(os.Environ()) }

// LoadPublisher reads and checks the publisher's settings from environ.
func LoadPublisher(environ map[string]string) (Publisher, error) {
	c := defaultPublisher()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	c.noteDefault(environ)
	if err := c.Broker.validate(); err != nil {
		return c, err
	}
	if err := c.Telemetry.validate(); err != nil {
		return c, err
	}
	if err := validateAppID(c.App(), environ); err != nil {
		return c, err
	}
	if err := c.PublisherConfig(nil, nil).Validate(); err != nil {
		return c, libraryError(err, environ, nil)
	}
	switch {
	case c.Timeout <= 0:
		return c, &Error{"PUBLISH_TIMEOUT", c.Timeout.String(), "must be positive"}
	case c.Deadline < 0:
		return c, &Error{"PUBLISH_DEADLINE", c.Deadline.String(), "must be positive, or 0 (the default) for no bound"}
	case c.MaxBody < 1:
		return c, &Error{"PUBLISHER_MAX_BODY", fmt.Sprint(c.MaxBody), "must be positive"}
	case c.ShutdownTimeout <= 0:
		return c, &Error{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(), "must be positive"}
	}
	if environ["PUBLISHER_MAX_IN_FLIGHT"] == "" {
		c.MaxInFlight = max(c.MaxInFlight, c.MaxEvents) // as the ingest's own default
	}
	switch {
	case c.Auth != AuthKeys && c.Auth != AuthNone:
		return c, &Error{"PUBLISHER_AUTH", c.Auth, "use keys (callers send an API key, the default) or none (anyone may publish: a local demo only)"}
	case c.MaxEvents < 1:
		return c, &Error{"PUBLISHER_MAX_EVENTS", fmt.Sprint(c.MaxEvents), "must be positive"}
	case c.MaxInFlight < c.MaxEvents:
		return c, &Error{"PUBLISHER_MAX_IN_FLIGHT", fmt.Sprint(c.MaxInFlight),
			fmt.Sprintf("must be at least PUBLISHER_MAX_EVENTS (%d): a request that large could never be admitted", c.MaxEvents)}
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, &Error{"PUBLISHER_RATE", environ["PUBLISHER_RATE"], "use events per second per caller, e.g. 100 or 0.5, or 0 (the default) for no limit"}
	case c.MaxDepth < 1:
		return c, &Error{"PUBLISHER_MAX_DEPTH", fmt.Sprint(c.MaxDepth), "must be positive"}
	}
	c.ProgressTimeout = DefaultProgressTimeout
	if environ["PUBLISH_TIMEOUT"] != "" {
		c.ProgressTimeout = c.Timeout
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, &Error{"PUBLISHER_ADDR", c.Addr, "use host:port or :port, e.g. :8080"}
	}
	return c, nil
}

// LoadWorker reads and checks the worker's settings from environ.
func LoadWorker(environ map[string]string) (Worker, error) {
	c := defaultWorker()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	c.noteDefault(environ)
	if err := c.Broker.validate(); err != nil {
		return c, err
	}
	if err := c.Telemetry.validate(); err != nil {
		return c, err
	}
	if err := validateApp(c.App(), environ); err != nil {
		return c, err
	}
	for i, t := range c.EventTypes {
		c.EventTypes[i] = strings.TrimSpace(t)
	}
	// Parsing is ours; whether the delays are usable is the library's.
	if _, err := retry.ParseDelays(c.RetryDelays); err != nil {
		return c, &Error{"RETRY_DELAYS", c.RetryDelays, err.Error()}
	}
	if err := c.WorkerConfig(nil, nil).Validate(); err != nil {
		return c, libraryError(err, environ, map[string]string{
			"EVENT_TYPES":  strings.Join(c.EventTypes, ","),
			"RETRY_DELAYS": c.RetryDelays,
		})
	}
	if c.ShutdownTimeout <= 0 {
		return c, &Error{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(), "must be positive"}
	}
	switch c.Handler {
	case "log", "webhook", "redis":
	default:
		return c, &Error{"HANDLER", c.Handler, HandlerUsage}
	}
	if err := c.checkRedis(); err != nil {
		return c, err
	}
	if c.Handler == "webhook" && c.WebhookURL == "" {
		return c, &Error{"WEBHOOK_URL", "", "required when HANDLER=webhook"}
	}
	// WEBHOOK_TIMEOUT is checked whatever the handler, so that a typo shows
	// before someone switches to HANDLER=webhook; WEBHOOK_URL only matters then.
	var we *webhook.ConfigError
	if err := c.WebhookConfig().Validate(); errors.As(err, &we) {
		switch {
		case we.Field == "Timeout":
			return c, &Error{"WEBHOOK_TIMEOUT", we.Value, we.Reason}
		case we.Field == "URL" && c.Handler == "webhook":
			// The URL may carry a password or a token: never echo it.
			return c, &Error{"WEBHOOK_URL", "<hidden>", we.Reason}
		}
	}
	// Checked whatever the handler too. The error names a secret by its
	// position only.
	var se *webhook.SecretError
	if _, err := webhook.ParseSecrets(c.WebhookSecret); errors.As(err, &se) {
		reason := se.Reason
		if se.Of > 1 {
			reason = fmt.Sprintf("secret %d of %d: %s", se.N, se.Of, se.Reason)
		}
		return c, &Error{"WEBHOOK_SECRET", "<hidden>", reason}
	}
	return c, nil
}

// HandlerUsage is what HANDLER may be.
const HandlerUsage = "use log (a JSON line per event on stdout), webhook (POST to WEBHOOK_URL) or redis (PUBLISH to REDIS_CHANNEL)"

// fanoutVars names the variable of each redisfanout.Config field.
var fanoutVars = map[string]string{"URL": "REDIS_URL", "Channel": "REDIS_CHANNEL", "Timeout": "REDIS_TIMEOUT"}

// checkRedis checks HANDLER=redis's settings: REDIS_CHANNEL and
// REDIS_TIMEOUT whatever the handler, so that a typo shows before someone
// switches to HANDLER=redis; REDIS_URL only matters then.
func (c Worker) checkRedis() error {
	var ce *redisfanout.ConfigError
	if err := c.RedisConfig(nil).Validate(); errors.As(err, &ce) {
		name := fanoutVars[ce.Field]
		if name == "" {
			return err // a field the environment does not set: a bug here
		}
		if name != "REDIS_URL" || c.Handler == "redis" {
			return &Error{name, ce.Value, ce.Reason} // the URL's password hidden
		}
	}
	return nil
}

// RedisConfig maps the settings to HANDLER=redis's configuration, its
// defaults filled in first (see WorkerConfig); m may be nil.
func (c Worker) RedisConfig(m *metrics.Metrics) redisfanout.Config {
	rc := redisfanout.Config{Metrics: m}.WithDefaults()
	rc.URL = c.RedisURL
	rc.Channel = c.RedisChannel
	rc.Timeout = c.RedisTimeout
	// Every concurrent handler may hold a connection.
	rc.PoolSize = c.Concurrency
	return rc
}

// WebhookConfig maps the settings to the webhook handler's configuration,
// the webhook's defaults filled in first (see WorkerConfig).
func (c Worker) WebhookConfig() webhook.Config {
	wc := webhook.Config{}.WithDefaults()
	wc.URL = c.WebhookURL
	wc.Timeout = c.WebhookTimeout
	wc.Secrets, _ = webhook.ParseSecrets(c.WebhookSecret) // checked by LoadWorker
	// Every concurrent handler can hold a connection; keep them all.
	wc.MaxIdleConnsPerHost = max(c.Concurrency, webhook.DefaultMaxIdleConnsPerHost)
	return wc
}

// WorkerConfig maps the settings to the library's configuration; log and m
// may be nil. The library's defaults are filled in first, so that a setting
// of 0 stays 0 and Validate refuses it: in the environment, the default is
// asked for by leaving the variable unset.
func (c Worker) WorkerConfig(log *slog.Logger, m *metrics.Metrics) amqp.WorkerConfig {
	delays, _ := retry.ParseDelays(c.RetryDelays) // checked by LoadWorker
	wc := amqp.WorkerConfig{Logger: log, Metrics: m}.WithDefaults()
	wc.URL = c.AMQPURL
	wc.TLS = c.TLS()
	wc.Exchange = c.Exchange
	wc.Topology = c.Topology
	wc.App = c.App()
	wc.QueueType = c.QueueType
	wc.EventTypes = c.EventTypes
	wc.Concurrency = c.Concurrency
	wc.Prefetch = c.Prefetch
	wc.HandlerTimeout = c.HandlerTimeout
	wc.Retry = retry.Policy{Delays: delays, MaxAttempts: c.RetryMaxAttempts}
	wc.DeliveryLimit = c.DeliveryLimit
	wc.QuorumInitialGroupSize = c.QuorumInitialGroupSize
	wc.MaxBody = c.MaxBody
	return wc
}

// PublisherConfig maps the settings to the library's configuration; log and
// m may be nil. As for WorkerConfig, the library's defaults come first.
func (c Publisher) PublisherConfig(log *slog.Logger, m *metrics.Metrics) amqp.PublisherConfig {
	pc := amqp.PublisherConfig{Logger: log, Metrics: m}.WithDefaults()
	pc.URL = c.AMQPURL
	pc.TLS = c.TLS()
	pc.Exchange = c.Exchange
	pc.Topology = c.Topology
	pc.QuorumInitialGroupSize = c.QuorumInitialGroupSize
	pc.AppID = c.App()
	pc.Window = c.Window
	return pc
}

// libraryVars names the variable that sets each library Config field, for
// the library's *amqp.ConfigError.
var libraryVars = map[string]string{
	"URL":                    "AMQP_URL",
	"TLS.CAFile":             "AMQP_TLS_CA_FILE",
	"TLS.CertFile":           "AMQP_TLS_CERT_FILE",
	"TLS.KeyFile":            "AMQP_TLS_KEY_FILE",
	"TLS.ServerName":         "AMQP_TLS_SERVER_NAME",
	"Exchange":               "EXCHANGE",
	"Topology":               "TOPOLOGY",
	"App":                    "APP_NAME",
	"AppID":                  "APP_NAME",
	"Window":                 "PUBLISH_WINDOW",
	"QueueType":              "QUEUE_TYPE",
	"EventTypes":             "EVENT_TYPES",
	"Concurrency":            "WORKER_CONCURRENCY",
	"Prefetch":               "WORKER_PREFETCH",
	"HandlerTimeout":         "HANDLER_TIMEOUT",
	"DeliveryLimit":          "DELIVERY_LIMIT",
	"QuorumInitialGroupSize": "QUORUM_INITIAL_GROUP_SIZE",
	"MaxBody":                "WORKER_MAX_BODY",
	"Retry.Delays":           "RETRY_DELAYS",
	"Retry.MaxAttempts":      "RETRY_MAX_ATTEMPTS",
}

// libraryError turns the library's *amqp.ConfigError into an *Error naming
// the variable. values overrides the value shown, by variable, where the
// library's field holds it in another form (EVENT_TYPES as a list).
func libraryError(err error, environ, values map[string]string) error {
	var ce *amqp.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	name, ok := libraryVars[ce.Field]
	if !ok {
		return err // a field the environment does not set: a bug here
	}
	switch name {
	case "AMQP_URL":
		return urlError(ce.Value, err) // the library hid the password
	case "APP_NAME":
		if environ["APP_NAME"] == "" {
			name = "FLY_APP_NAME"
		}
	}
	value, ok := values[name]
	if !ok {
		value = ce.Value
	}
	return &Error{name, value, ce.Reason}
}

// urlError is AMQP_URL's error; redacted is the URL without its password.
func urlError(redacted string, err error) error {
	reason := "not an AMQP URL (amqp://user:password@host:5672/vhost)"
	if ue := (*amqp.URLError)(nil); errors.As(err, &ue) {
		reason = "not a usable AMQP URL: " + ue.Problem
		switch {
		case ue.Element > 0 && ue.URL == "":
			reason = fmt.Sprintf("URL %d of the comma-separated list is %s", ue.Element, ue.Problem)
		case ue.Element > 0:
			reason = fmt.Sprintf("URL %d of the comma-separated list, %s, is not a usable AMQP URL: %s", ue.Element, ue.URL, ue.Problem)
		}
	}
	return &Error{"AMQP_URL", redacted, reason}
}

// tlsVars names the variable of each amqp.TLSFiles field.
var tlsVars = map[string]string{
	"CAFile":     "AMQP_TLS_CA_FILE",
	"CertFile":   "AMQP_TLS_CERT_FILE",
	"KeyFile":    "AMQP_TLS_KEY_FILE",
	"ServerName": "AMQP_TLS_SERVER_NAME",
}

// tlsError turns amqp.ValidateTLS's error into an *Error naming the variable.
func tlsError(err error) error {
	var te *amqp.TLSFileError
	if !errors.As(err, &te) {
		return err
	}
	return &Error{tlsVars[te.Field], te.Value, te.Problem}
}

// validateApp checks the app name of a binary whose app has queues (the
// worker, `worker dlq`): amqp.ValidateAppName.
func validateApp(app string, environ map[string]string) error {
	return appError(amqp.ValidateAppName(app), app, environ)
}

// validateAppID checks the publisher's app name, which is only the
// messages' app_id: amqp.ValidateAppID.
func validateAppID(app string, environ map[string]string) error {
	return appError(amqp.ValidateAppID(app), app, environ)
}

// appError names the variable the app name came from in err.
func appError(err error, app string, environ map[string]string) error {
	if err != nil {
		name := "APP_NAME"
		if environ["APP_NAME"] == "" {
			name = "FLY_APP_NAME"
		}
		return &Error{name, app, err.Error()}
	}
	return nil
}

// parse runs caarlos0/env and turns its errors, which name Go fields, into
// errors that name the environment variable.
func parse(v any, environ map[string]string) error {
	err := env.ParseWithOptions(v, env.Options{Environment: environ})
	if err == nil {
		return nil
	}
	var agg env.AggregateError
	if errors.As(err, &agg) {
		for _, e := range agg.Errors {
			var pe env.ParseError
			if errors.As(e, &pe) {
				name := envName(reflect.TypeOf(v).Elem(), pe.Name)
				return &Error{name, environ[name], fmt.Sprintf("not a valid %s (%v)", typeWord(pe.Type), pe.Err)}
			}
		}
	}
	return err
}

func typeWord(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration (use Go syntax like 500ms, 10s, 5m)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "whole number"
	case t.Kind() == reflect.Float64:
		return "number"
	default:
		return t.String()
	}
}

// envName finds the env tag of the field called field in t or its embedded structs.
func envName(t reflect.Type, field string) string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if n := envName(f.Type, field); n != "" {
				return n
			}
		}
		if f.Name == field {
			return f.Tag.Get("env")
		}
	}
	return ""
}
