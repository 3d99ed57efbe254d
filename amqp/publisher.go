package amqp

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/tracing"
)

// Publisher publishes events with publisher confirms. It is safe for
// concurrent use; many publishes are in flight at once on one channel.
//
// Publish returns nil only after the broker confirmed the message. An event no
// queue is bound for is returned by the broker (every publish is mandatory);
// the Publisher then keeps it in the unrouted queue and returns nil once that
// copy is confirmed. If the connection dies before a confirm arrives, the
// message is published again (same message_id) on the next connection, for as
// long as the caller's context allows: a duplicate is possible, a loss is not.
// A connection the broker closed because it refused a publish (403, 404) is
// the exception: the messages that refusal covers fail with it
// (ErrAccessRefused, ErrTopologyMissing) instead of being sent into it again.
type Publisher struct {
	cfg    PublisherConfig
	log    *slog.Logger
	slots  chan struct{}    // one token per message in flight
	m      *metrics.Metrics // nil for a Worker's hops: they are not published events
	connm  *metrics.ConnMetrics
	tracer trace.Tracer
	// spanName is built once: a string per publish was a measurable share
	// of the allocations.
	spanName string

	// life: Stopping refuses new publishes; Halted (once those in flight
	// are settled, or Stop's context ended) ends the connection loop.
	life *lifecycle.Lifecycle
	// nodes is the cursor over cfg.URL's addresses; only run moves it.
	nodes *endpoints

	mu    sync.Mutex
	sess  *pubSession   // nil while disconnected
	ready chan struct{} // closed while sess != nil
	// refused is the broker's latest refusal of a publish (written by the
	// session that it closed), until a connect finds that it takes what it
	// refused again (then serve clears it). Meanwhile publishes it covers
	// fail at once, and connect checks it first (probe).
	refused *refusal
	// attempted is closed when the connect attempt under way (or the next
	// one, during a backoff) ends, connected (serve) or failed (run's
	// Failed), and replaced for the one after it: redeclareOwn waits on it.
	attempted chan struct{}

	unrouted atomic.Int64
	last     lastError // why it is not connected; written by run
	// toldKeptSize: the unrouted queue kept with its own initial group
	// size was logged. Written and read by run's goroutine only (connect).
	toldKeptSize bool
}

// NewPublisher validates cfg and returns a Publisher. Call Start to connect.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nodes, err := newEndpoints(cfg.URL)
	if err != nil {
		return nil, urlConfigError("URL", cfg.URL, err) // Validate has checked it
	}
	m := cfg.Metrics
	if cfg.role != metrics.RolePublisher {
		m = nil
	}
	component := "publisher"
	if cfg.role == metrics.RoleHops {
		// A worker's connection for retries and dead letters: its lines
		// belong to the worker (the Worker passes a logger naming the app).
		component = "worker-hops"
	}
	log := cfg.Logger.With("component", component, "broker", RedactURL(cfg.URL))
	if cfg.AppID != "" {
		log = log.With("app", cfg.AppID) // lines about events name the app
	}
	return &Publisher{
		cfg:      cfg,
		m:        m,
		connm:    cfg.Metrics.Conn(cfg.role),
		tracer:   tracing.Tracer(cfg.TracerProvider),
		spanName: "publish " + cfg.Exchange,
		log:      log,
		slots:    make(chan struct{}, cfg.Window),
		ready:    make(chan struct{}),
		life:     lifecycle.New(),
		nodes:    nodes,

		attempted: make(chan struct{}),
	}, nil
}

// Start connects in the background and returns at once: a broker that is not
// up yet is retried with backoff while Publish calls wait (bounded by their
// contexts). Watch Done for errors that retrying cannot fix.
func (p *Publisher) Start(context.Context) error {
	if err := p.life.Start(); err != nil {
		return startError(err)
	}
	go p.run()
	return nil
}

// begin admits a publish call, or refuses it once Stop was called; a nil
// error must be paired with p.life.Leave.
func (p *Publisher) begin() error {
	if p.life.Enter() != nil {
		return p.closedErr()
	}
	return nil
}

// closedErr is the error of a call the Publisher can no longer serve: the
// fatal error that ended it, else ErrClosed.
func (p *Publisher) closedErr() error {
	if err := p.life.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// Stop stops taking new publishes, waits for those in flight to be confirmed
// (or ctx to end), then closes the connection. It is safe to call twice or
// before Start. It returns ctx.Err() if ctx ended first.
func (p *Publisher) Stop(ctx context.Context) error {
	started := p.life.Stop()
	err := p.life.Drain(ctx)
	p.life.Halt()
	if started {
		<-p.life.Done()
	}
	return err
}

// run owns the connection: connect, serve until the session dies, reconnect.
// It keeps reconnecting while Stop waits for in-flight publishes, which may
// need a new connection to be confirmed; it ends on Halt.
func (p *Publisher) run() {
	// With StopOnRefusal, a refusal is fatal once a whole round of the
	// addresses since the last session failed with at least one refusal
	// among them: each URL of a list may carry its own user and password,
	// and a node that is down says nothing about them (run's goroutine
	// only).
	tried, refused := 0, error(nil)
	var stopped error // the refusal that stopped it, reported rather than the round's last error
	err := lifecycle.Loop[*pubSession]{
		Backoff:   p.cfg.Backoff,
		Addresses: p.nodes.len(),
		Quit:      p.life.Halted(),
		Connect:   func(uint64) (*pubSession, error) { return p.connect(p.life.HaltContext()) },
		Fatal: func(err error) bool {
			if isFatal(err) {
				return true
			}
			if !p.cfg.StopOnRefusal {
				return false
			}
			tried++
			if refused == nil && (IsRefusal(err) || IsPublishRefusal(err)) {
				refused = err
			}
			if tried < p.nodes.len() {
				return false
			}
			stopped = refused
			tried, refused = 0, nil
			return stopped != nil
		},
		Serve: func(s *pubSession, gen uint64, attempt int) error {
			tried, refused = 0, nil
			return p.serve(s, gen, attempt)
		},
		Failed: func(err error, lost bool, _ uint64, attempt int) {
			p.last.set(err)
			node := p.nodes.failed()
			if !lost {
				p.mu.Lock()
				p.attemptEndedLocked()
				p.mu.Unlock()
			}
			switch {
			case lost && IsPublishRefusal(err):
				// Once per session: publishes it covers fail at once
				// until a connect finds the broker takes them again.
				p.log.Error("broker refused a publish and closed the channel; publishes there fail until it takes them, checked on each reconnect",
					"err", err, "node", node, "attempt", attempt)
			case lost:
				p.log.Warn("broker connection lost; reconnecting", "err", err, "node", node, "attempt", attempt)
			default:
				p.log.Warn("broker connection failed; retrying", "err", err, "node", node, "attempt", attempt)
			}
		},
	}.Run()
	if err != nil && stopped != nil && !isFatal(err) {
		err = stopped
	}
	if err != nil {
		p.last.set(err)
		p.log.Error("publisher stopped", "err", err)
	}
	p.life.Finish(err)
}

// serve makes s the session publishes use until it dies or the Publisher
// halts, and returns why it died.
func (p *Publisher) serve(s *pubSession, _ uint64, attempt int) error {
	if attempt > 0 || p.nodes.len() > 1 {
		// With several addresses, which one was picked is news.
		p.log.Info("connected to broker", "node", p.nodes.node())
	}
	p.mu.Lock()
	p.sess = s
	p.refused = nil // connect checked it (probe)
	close(p.ready)
	p.attemptEndedLocked()
	p.mu.Unlock()
	p.last.set(nil)
	p.connm.Up(true)

	select {
	case <-s.dead:
	case <-p.life.Halted():
		s.close()
	}
	p.mu.Lock()
	p.sess = nil
	p.ready = make(chan struct{})
	p.mu.Unlock()
	p.connm.Up(false)
	return s.cause()
}

// attemptEndedLocked wakes whoever waits for the connect attempt under way
// (see attempted). p.mu must be held.
func (p *Publisher) attemptEndedLocked() {
	close(p.attempted)
	p.attempted = make(chan struct{})
}

// Ready returns a channel that is closed while the Publisher is connected.
// A new channel is handed out after each disconnect.
func (p *Publisher) Ready() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// Connected reports whether the Publisher has a live connection now.
func (p *Publisher) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess != nil
}

// Node names the broker node (host:port) the Publisher is connected to, or
// while it is not, the one it tries next: one of the URLs of its
// PublisherConfig.URL.
func (p *Publisher) Node() string { return p.nodes.node() }

// LastError says why the Publisher is not connected: the error of the
// latest failed connect attempt, or of the connection that was lost (it may
// name ErrAccessRefused, ErrVhostNotFound, ErrTLS or ErrHandshakeTimeout).
// A publish the broker refused (ErrAccessRefused: no write permission on
// the exchange; ErrTopologyMissing: no such exchange) ends the connection
// too, and each reconnect checks first whether the broker takes it now, so
// LastError names that refusal until it does. It is nil while connected and
// before the first attempt has failed.
func (p *Publisher) LastError() error {
	if p.Connected() {
		return nil
	}
	return p.last.get()
}

// Done is closed when the Publisher has stopped for good: after Stop, or on an
// error that reconnecting cannot fix (see Err).
func (p *Publisher) Done() <-chan struct{} { return p.life.Done() }

// Err returns why the Publisher stopped: nil after Stop, or a fatal error such
// as ErrTopologyMismatch. Valid once Done is closed.
func (p *Publisher) Err() error { return p.life.Err() }

// Unrouted counts events this Publisher kept in the unrouted queue.
func (p *Publisher) Unrouted() int64 { return p.unrouted.Load() }

// Publish sends ev to the domain exchange with ev.Type as routing key and
// returns once the broker confirmed it. ev.ID is set to a new UUIDv7 when empty.
// Errors: ctx's error (wrapped) when it ends first, ErrNacked, ErrClosed,
// ErrAccessRefused or ErrTopologyMissing when the broker refuses the publish
// (see LastError), or a validation error for a bad event. On any error the event may still have
// reached the broker; publishing it again with the same ID is safe.
func (p *Publisher) Publish(ctx context.Context, ev event.Event) error {
	ctx, span, msg, err := p.prepare(ctx, &ev)
	if err != nil {
		return err
	}
	res, err := p.publish(ctx, p.cfg.Exchange, ev.Type, msg, true)
	p.record(span, ev.Type, res, err)
	return err
}

// prepare fills in an empty ID, checks the event and builds its message,
// carrying the trace context of the publish span it starts. An invalid event
// is counted as an error and gets no span.
func (p *Publisher) prepare(ctx context.Context, ev *event.Event) (context.Context, trace.Span, amqp091.Publishing, error) {
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	if err := ev.Validate(); err != nil {
		p.m.Published(ev.Type, metrics.Error, 0)
		return ctx, nil, amqp091.Publishing{}, err
	}
	ctx, span := p.startSpan(ctx, ev)
	appID := p.cfg.AppID
	if ev.Source != "" {
		appID = ev.Source // the ingest's authenticated caller
	}
	msg := publishing(ev, appID, time.Now())
	tracing.Inject(ctx, msg.Headers)
	return ctx, span, msg, nil
}

// Span options made once rather than per message.
var (
	producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// startSpan starts the producer span of one event. With the default no-op
// tracer it only carries the caller's trace context, so attributes are set
// only on a span that records.
func (p *Publisher) startSpan(ctx context.Context, ev *event.Event) (context.Context, trace.Span) {
	ctx, span := p.tracer.Start(ctx, p.spanName, producerSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.System, tracing.OpName.String("publish"), tracing.OpType.String("send"),
			tracing.Destination.String(p.cfg.Exchange), tracing.RoutingKey.String(ev.Type),
			tracing.MessageID.String(ev.ID), tracing.BodySize.Int(len(ev.Data)))
	}
	return ctx, span
}

// record ends an event's span and counts its outcome.
func (p *Publisher) record(span trace.Span, typ string, res published, err error) {
	outcome := metrics.Confirmed
	switch {
	case err == nil && res.unrouted:
		outcome = metrics.Returned
	case errors.Is(err, ErrNacked):
		outcome = metrics.Nacked
	case err != nil:
		outcome = metrics.Error
	}
	p.m.Published(typ, outcome, res.took)
	if span.IsRecording() {
		span.SetAttributes(tracing.Outcome.String(outcome))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
