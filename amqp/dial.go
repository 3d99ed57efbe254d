package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DefaultHandshakeTimeout bounds one dial: TCP connect, TLS handshake and
// AMQP handshake together. It is RabbitMQ's own handshake_timeout: a broker
// drops a client that has not finished the handshake by then, so waiting
// longer cannot succeed, and a healthy broker answers in milliseconds. The
// URL's connection_timeout (milliseconds, as amqp091-go reads it) overrides it.
const DefaultHandshakeTimeout = 10 * time.Second

// clientFrameMax is what the client offers in connection.tune-ok: RabbitMQ's
// default frame_max, as amqp091.DialConfig offers.
const clientFrameMax = 128 << 10

// ErrHandshakeTimeout: the broker address accepted the connection but did
// not complete the TLS or AMQP handshake within the handshake timeout.
var ErrHandshakeTimeout = errors.New("amqp: no answer within the handshake timeout")

// Dial opens a connection named name (shown in the management UI), the same
// dial the Publisher and Worker use: TLS for amqps:// with verification on
// (the URL's cacertfile, certfile, keyfile and server_name_indication), a
// deadline of DefaultHandshakeTimeout on the handshakes, heartbeats of
// DefaultHeartbeat (the URL's heartbeat wins), and the socket closed at once
// when ctx ends. Errors never contain the password.
//
// url may list several URLs separated by commas (see PublisherConfig.URL):
// Dial tries each once, starting at a random one, and returns the first
// connection made; if none is, its error names every attempt.
//
// Like every connection of this package, it never hands amqp091 a header it
// cannot read (see HeaderUnreadable); WithMaxBody also keeps
// large bodies out of memory.
func Dial(ctx context.Context, url, name string, opts ...DialOption) (*amqp091.Connection, error) {
	o := dialOptions{name: name}
	for _, opt := range opts {
		opt(&o)
	}
	nodes, err := newEndpoints(url)
	if err != nil {
		return nil, err
	}
	var errs dialErrors
	for range nodes.len() {
		u, _ := nodes.current()
		c, err := dial(ctx, u, o)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		nodes.failed()
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errs
}

// dialErrors are the failed attempts of a Dial over several URLs, in the
// order they were made.
type dialErrors []error

func (e dialErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e dialErrors) Unwrap() []error { return e }

// A DialOption changes what Dial does.
type DialOption func(*dialOptions)

// WithMaxBody makes the connection withhold bodies over n bytes: such a
// delivery arrives with an empty body and HeaderWithheldBody
// giving the body's size, and the body is discarded as it arrives, never
// held in memory. 0 (the default) keeps every body.
func WithMaxBody(n int) DialOption { return func(o *dialOptions) { o.maxBody = n } }

// WithTLS sets the TLS settings of an amqps:// connection apart from the
// URL; each set field wins over its URL parameter (see TLSFiles).
func WithTLS(f TLSFiles) DialOption { return func(o *dialOptions) { o.tls = f } }

// dialOptions are what the package's own connections vary.
type dialOptions struct {
	name             string        // connection name
	tls              TLSFiles      // over the URL's TLS parameters
	heartbeat        time.Duration // 0: DefaultHeartbeat
	handshakeTimeout time.Duration // 0: DefaultHandshakeTimeout
	// wrapSocket, if set, wraps the TCP socket, below TLS (socket corking).
	wrapSocket func(net.Conn) net.Conn
	// maxBody: bodies over it are withheld (see vetInbound); 0: none.
	maxBody int
	// inbound, if set, wraps the plaintext connection amqp091 reads and
	// writes, above TLS. What it returns must pass SetDeadline and
	// SetReadDeadline through to the socket (embedding net.Conn does):
	// amqp091's heartbeater relies on them.
	inbound func(net.Conn) net.Conn
}

// dial opens a connection. It returns once the AMQP handshake is done, the
// handshake timeout passed, or ctx ended; on every failure the socket is
// closed and no goroutine is left behind.
func dial(ctx context.Context, u string, o dialOptions) (*amqp091.Connection, error) {
	c, err := dialURL(ctx, u, o)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactOne(u), err)
	}
	return c, nil
}

func dialURL(ctx context.Context, u string, o dialOptions) (*amqp091.Connection, error) {
	t, err := parseTarget(u, o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// asked is set when the broker asked for a client certificate: a
	// broker that then refuses ours, or its absence, often only drops the
	// connection, and this is what can still tell why.
	var asked certAsk
	failed := func(step string, err error) error {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", step, context.Cause(ctx))
		case !time.Now().Before(deadline):
			return &timeoutError{step: step, after: deadline.Sub(start)}
		}
		if named := classifyConnect(step, err, asked); named != nil {
			return named
		}
		return fmt.Errorf("%s: %w", step, err)
	}

	d := net.Dialer{Deadline: deadline}
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, failed("TCP connect", err)
	}
	// From here on, closing raw is what ends every blocked read and write.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	abort := func(c *amqp091.Connection) {
		stop()
		_ = raw.Close()
		if c != nil {
			// Its reader may still wait to hand a frame to the failed
			// handshake; Close releases it (the write fails at once).
			_ = c.Close()
		}
	}

	conn := raw
	if o.wrapSocket != nil {
		conn = o.wrapSocket(conn)
	}
	// One deadline for both handshakes; amqp091 clears it when the AMQP
	// handshake succeeds, before its heartbeater takes over the read deadline.
	if err := conn.SetDeadline(deadline); err != nil {
		abort(nil)
		return nil, failed("TCP connect", err)
	}
	if t.tls != nil {
		tc := tls.Client(conn, asked.watch(t.tls))
		if err := tc.HandshakeContext(ctx); err != nil {
			abort(nil)
			return nil, failed("TLS handshake", err)
		}
		conn = tc
	}
	// Every connection is vetted: one header amqp091 cannot read would
	// otherwise close the whole connection, on every redelivery.
	conn = vetInbound(conn, o.maxBody)
	if o.inbound != nil {
		conn = o.inbound(conn)
	}
	c, err := amqp091.Open(conn, t.config)
	if err != nil {
		abort(c)
		return nil, failed("AMQP handshake", err)
	}
	if !stop() { // ctx ended just as the handshake finished: raw is closed
		abort(c)
		return nil, failed("AMQP handshake", ctx.Err())
	}
	// Clearing the read deadline here could undo the one amqp091's
	// heartbeater has just set; the write deadline is ours alone.
	_ = conn.SetWriteDeadline(time.Time{})
	return c, nil
}

// target is what a dial needs from the URL and the options.
type target struct {
	addr    string
	tls     *tls.Config // nil for amqp://
	timeout time.Duration
	config  amqp091.Config
}

// parseTarget derives the dial from u as amqp091.DialConfig does: vhost,
// SASL mechanisms and credentials, channel_max, heartbeat (the URL's wins)
// and, for amqps, the TLS settings.
func parseTarget(u string, o dialOptions) (target, error) {
	uri, err := parseURL(u)
	if err != nil {
		return target{}, err
	}
	if err := o.tls.validateFor(uri); err != nil {
		return target{}, err
	}
	uri = o.tls.apply(uri)
	q, err := urlQuery(u)
	if err != nil {
		return target{}, err
	}
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName(o.name)
	t := target{
		addr:    net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)),
		timeout: o.handshakeTimeout,
		config: amqp091.Config{
			Vhost:      uri.Vhost,
			ChannelMax: uri.ChannelMax,
			FrameSize:  clientFrameMax,
			Heartbeat:  o.heartbeat,
			Properties: props,
			Locale:     "en_US",
		},
	}
	if t.timeout <= 0 {
		t.timeout = DefaultHandshakeTimeout
	}
	if uri.ConnectionTimeout > 0 {
		t.timeout = time.Duration(uri.ConnectionTimeout) * time.Millisecond
	}
	if t.config.Heartbeat <= 0 {
		t.config.Heartbeat = DefaultHeartbeat
	}
	if q.Has("heartbeat") { // validated by parseURL; 0 turns heartbeats off
		s, _ := strconv.ParseUint(q.Get("heartbeat"), 10, 16)
		t.config.Heartbeat = time.Duration(s) * time.Second
	}
	if t.config.SASL, err = saslFromURI(uri); err == nil && uri.Scheme == "amqps" {
		t.tls, err = tlsFromURI(uri)
	}
	if ue := (*URLError)(nil); errors.As(err, &ue) && ue.URL == "" {
		ue.URL = redactOne(u)
	}
	return t, err
}

// timeoutError is a handshake step that got no answer in time.
type timeoutError struct {
	step  string
	after time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s: no answer within %s", e.step, e.after.Round(time.Millisecond))
}

func (e *timeoutError) Is(target error) bool { return target == ErrHandshakeTimeout }

// Timeout reports true, as a net.Error would.
func (e *timeoutError) Timeout() bool { return true }
