package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
	"github.com/eventfleet/eventfleet/tracing"
)

// Defaults and limits.
const (
	// DefaultTimeout bounds one delivery when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxIdleConnsPerHost is the idle keep-alive connections kept per
	// host when Config.MaxIdleConnsPerHost is zero. It is above the worker's
	// default concurrency (16) so concurrent handlers reuse connections
	// instead of opening new ones; net/http's default of 2 would not.
	DefaultMaxIdleConnsPerHost = 64
	// SnippetLen is the most response-body bytes quoted in an error.
	SnippetLen = 256
	// MaxDrain is the most response-body bytes read. Reading the body to its
	// end lets net/http reuse the connection; a longer body is cut off, and
	// its connection closed rather than read without bound.
	MaxDrain = 64 << 10
	// UserAgent identifies our requests.
	UserAgent = "eventfleet-worker"
)

// Request headers, part of the webhook contract.
const (
	HeaderEventID     = "X-Event-Id"
	HeaderEventType   = "X-Event-Type"
	HeaderAttempt     = "X-Event-Attempt"
	HeaderAggregateID = "X-Aggregate-Id"
	HeaderSource      = "X-Event-Source"
	// HeaderDropped names, comma-separated, the headers above that were left
	// out because their value cannot be an HTTP header value.
	HeaderDropped = "X-Event-Dropped-Headers"
)

// ErrInvalidConfig wraps every Config validation error.
var ErrInvalidConfig = errors.New("webhook: invalid configuration")

// Config configures a Handler.
type Config struct {
	// URL is the endpoint events are POSTed to: http or https, with a host.
	// Required.
	URL string
	// Timeout bounds one delivery, from connecting to reading the answer; the
	// handler's context (the worker's HANDLER_TIMEOUT) bounds it too. A
	// timeout is a retryable failure. Defaults to DefaultTimeout (10s).
	Timeout time.Duration
	// Client sends the requests. Defaults to a client with its own pooled
	// Transport (see MaxIdleConnsPerHost). A given Client is copied and never
	// follows redirects, whatever its CheckRedirect says.
	Client *http.Client
	// MaxIdleConnsPerHost sizes the default Transport's keep-alive pool; set it
	// to at least the worker's concurrency. Defaults to
	// DefaultMaxIdleConnsPerHost (64). Ignored when Client is set.
	MaxIdleConnsPerHost int
	// Secrets sign every request (Standard Webhooks: webhook-id,
	// webhook-timestamp and one webhook-signature per secret; see Sign).
	// Several secrets are for a rotation. Defaults to none: requests go
	// unsigned, without the webhook-* headers (see Warnings).
	Secrets []Secret
}

// ConfigError is a Config field that New refuses. It names the field so
// that a caller filling the Config from elsewhere (internal/config, from the
// environment) can name its own setting. errors.Is(err, ErrInvalidConfig)
// holds.
type ConfigError struct {
	Field  string // the Go field: "URL", "Timeout", "MaxIdleConnsPerHost"
	Value  string // the refused value as text; an URL without password or query, or "" when it cannot be shown safely
	Reason string // what is wrong, e.g. "scheme must be http or https"
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%v: %s %s", ErrInvalidConfig, e.Field, e.Reason)
	}
	return fmt.Sprintf("%v: %s %s: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// WithDefaults returns c with every zero field set to its default. It is
// the one place the defaults are filled in: New calls it, and so does a
// caller that wants to show or adjust them.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return c
}

// Validate reports the first field New refuses, as a *ConfigError. It
// checks c as it is, a zero field included: call it on c.WithDefaults(), as
// New does.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

func (c Config) parse() (*url.URL, error) {
	switch {
	case c.Timeout <= 0:
		return nil, &ConfigError{"Timeout", c.Timeout.String(), "must be positive"}
	case c.MaxIdleConnsPerHost <= 0:
		return nil, &ConfigError{"MaxIdleConnsPerHost", fmt.Sprint(c.MaxIdleConnsPerHost), "must be positive"}
	case c.URL == "":
		return nil, &ConfigError{"URL", "", "is required"}
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse quotes the whole URL in its error, password included.
		return nil, &ConfigError{"URL", "", "is not a valid URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &ConfigError{"URL", redact(u), "scheme must be http or https"}
	case u.Hostname() == "":
		return nil, &ConfigError{"URL", redact(u), "has no host"}
	}
	return u, nil
}

// redact shows u without its password and query string, either of which may
// hold a secret.
func redact(u *url.URL) string {
	r := *u
	r.RawQuery, r.ForceQuery, r.Fragment, r.RawFragment = "", false, "", ""
	return r.Redacted()
}

// Handler POSTs events to a URL. It is an event.Handler, safe for concurrent
// use.
type Handler struct {
	url     string
	display string // url for errors and logs
	timeout time.Duration
	client  *http.Client
	secrets []Secret         // none: unsigned
	now     func() time.Time // the clock that stamps each attempt; tests set it
}

var _ event.Handler = (*Handler)(nil)

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	u, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		client.Transport = newTransport(cfg.MaxIdleConnsPerHost)
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Handler{
		url: cfg.URL, display: redact(u), timeout: cfg.Timeout, client: &client,
		secrets: append([]Secret(nil), cfg.Secrets...), now: time.Now,
	}, nil
}

// newTransport is net/http's default transport (proxy from the environment,
// dial and TLS timeouts, HTTP/2) with a keep-alive pool sized for many
// concurrent handlers.
func newTransport(idlePerHost int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idlePerHost
	t.MaxIdleConns = max(t.MaxIdleConns, idlePerHost)
	return t
}

// URL returns the endpoint for logs, without password or query string.
func (h *Handler) URL() string { return h.display }

// Signed reports whether requests carry signatures.
func (h *Handler) Signed() bool { return len(h.secrets) > 0 }

// Handle POSTs ev and maps the answer to nil, a retryable error or a
// permanent one (see the package documentation).
func (h *Handler) Handle(ctx context.Context, ev event.Event) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := h.request(ctx, ev)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return h.sendError(ctx, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxDrain))
	_ = resp.Body.Close()

	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	serr := &StatusError{URL: h.display, StatusCode: code, Body: snippet(body)}
	if retryable(code) {
		return serr
	}
	return retry.Permanent(serr)
}

// request builds the POST for one attempt. Each attempt is signed anew,
// with its own timestamp, over the body bytes the request sends.
func (h *Handler) request(ctx context.Context, ev event.Event) (*http.Request, error) {
	req, body, err := newRequest(ctx, h.url, ev)
	if err != nil {
		return nil, retry.Permanent(fmt.Errorf("webhook: POST %s: %v", h.display, err))
	}
	if h.Signed() {
		signHeader(req.Header, h.secrets, MessageID(ev), h.now(), body)
	}
	return req, nil
}

// NewRequest is the POST a Handler sends for ev to url (see the package
// documentation for its headers), unsigned: a Handler with secrets adds
// the webhook-* headers to it. It fails only for a url that
// http.NewRequest refuses: every event can be sent. An envelope value that
// HTTP cannot carry in a header (a control character other than tab, in an
// id, aggregate id or source a foreign publisher set) is left out, and its
// header's name listed in HeaderDropped.
func NewRequest(ctx context.Context, url string, ev event.Event) (*http.Request, error) {
	req, _, err := newRequest(ctx, url, ev)
	return req, err
}

// newRequest is NewRequest, and the body it sends: the bytes to sign.
func newRequest(ctx context.Context, url string, ev event.Event) (*http.Request, []byte, error) {
	body := []byte(ev.Data)
	if len(body) == 0 {
		body = []byte("{}")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderAttempt, strconv.Itoa(ev.Attempt))
	var dropped []string
	for _, f := range []struct {
		header, value string
		optional      bool
	}{
		{HeaderEventID, ev.ID, false},
		{HeaderEventType, ev.Type, false},
		{HeaderAggregateID, ev.AggregateID, true},
		{HeaderSource, ev.Source, true},
	} {
		switch {
		case f.optional && f.value == "":
			// left out rather than sent empty
		case !validHeaderValue(f.value):
			// net/http would refuse the whole request, with an error that
			// looks like a network failure; the event itself is fine.
			dropped = append(dropped, f.header)
		default:
			req.Header.Set(f.header, f.value)
		}
	}
	if dropped != nil {
		req.Header.Set(HeaderDropped, strings.Join(dropped, ","))
	}
	// The worker's process span (or, without span export, the publisher's
	// trace context) continues in the receiving app's trace.
	if trace.SpanContextFromContext(ctx).IsValid() {
		tracing.Propagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req, body, nil
}

// sendError describes a request that got no answer. All such failures are
// retryable: the endpoint may be down or slow for now.
func (h *Handler) sendError(ctx context.Context, err error) error {
	// *url.Error quotes the full URL; keep only its cause.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("webhook: POST %s: no answer in time (timeout %v or the handler's deadline): %w", h.display, h.timeout, err)
	}
	return fmt.Errorf("webhook: POST %s: %w", h.display, err)
}

// retryable reports the statuses that say "not now" rather than "never".
func retryable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// StatusError is an answer other than 2xx. Test with errors.As; whether it is
// retried is decided by retry.IsPermanent on the returned error.
type StatusError struct {
	URL        string // the endpoint, without password or query string
	StatusCode int
	Body       string // the start of the response body, at most SnippetLen bytes
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook: POST %s: status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// snippet is the start of body as one line of valid UTF-8, at most SnippetLen
// bytes, for an error message.
func snippet(body []byte) string {
	if len(body) > SnippetLen {
		cut := SnippetLen
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut]
	}
	s := strings.ToValidUTF8(string(body), "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	// Replacing invalid bytes can lengthen the text; cut again by bytes.
	for len(s) > SnippetLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// validHeaderValue is net/http's rule: no control characters except tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
