package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/retry"
	"github.com/eventfleet/eventfleet/tracing"
)

// DefaultWindow is the default number of messages a Publisher keeps in flight
// awaiting confirms. Measured on our broker: a window of 256 reaches ~9.4k/s on
// a classic and ~15k/s on a quorum queue, where a window of 1 manages ~0.7k/s.
const DefaultWindow = 256

// PublisherConfig configures a Publisher. The zero value of every field means
// its default.
type PublisherConfig struct {
	// URL is the broker's AMQP URL. Defaults to DefaultURL.
	URL string
	// Exchange is the domain exchange. Defaults to DefaultExchange.
	Exchange string
	// AppID is put in every message's app_id property. Optional.
	AppID string
	// Window bounds the messages in flight awaiting a confirm; Publish waits
	// for a free slot. Defaults to DefaultWindow (256).
	Window int
	// Name is the connection name shown by the broker. Defaults to "eventfleet-publisher".
	Name string
	// Backoff is the reconnect schedule. Defaults to 100ms doubling up to 30s.
	Backoff retry.Backoff
	// Heartbeat is the AMQP heartbeat interval; a connection silent for about
	// three intervals is dropped and replaced. Defaults to DefaultHeartbeat (10s).
	Heartbeat time.Duration
	// Logger receives connection events. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records publishes and the connection's state. Defaults to
	// nil: no metrics.
	Metrics *metrics.Metrics
	// TracerProvider makes the publish spans. Defaults to otel's global
	// provider. Trace context is written to the messages either way.
	TracerProvider trace.TracerProvider

	// role is the connection's metrics role: metrics.RolePublisher, or
	// metrics.RoleHops for a Worker's hops (which are not counted as
	// published events).
	role string
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Name == "" {
		c.Name = "eventfleet-publisher"
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.role == "" {
		c.role = metrics.RolePublisher
	}
	return c
}

func (c PublisherConfig) validate() error {
	if len(c.AppID) > 255 {
		return fmt.Errorf("%w: app id is %d bytes, AMQP allows 255", ErrInvalidConfig, len(c.AppID))
	}
	if c.Window < 1 || c.Window > 65535 {
		return fmt.Errorf("%w: publish window must be 1..65535, got %d", ErrInvalidConfig, c.Window)
	}
	return validateURL(c.URL)
}

// Publisher publishes events with publisher confirms. It is safe for
// concurrent use; many publishes are in flight at once on one channel.
//
// Publish returns nil only after the broker confirmed the message. An event no
// queue is bound for is returned by the broker (every publish is mandatory);
// the Publisher then keeps it in the unrouted queue and returns nil once that
// copy is confirmed. If the connection dies before a confirm arrives, the
// message is published again (same message_id) on the next connection, for as
// long as the caller's context allows: a duplicate is possible, a loss is not.
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

	mu      sync.Mutex
	sess    *pubSession   // nil while disconnected
	ready   chan struct{} // closed while sess != nil
	started bool

	stopping  chan struct{} // closed by Stop: no new publishes
	closeNow  chan struct{} // closed once in-flight publishes are settled
	closeOnce sync.Once
	done      chan struct{} // closed when the connection loop has ended
	doneOnce  sync.Once
	fatal     error // why the loop ended, set before done closes
	calls     sync.WaitGroup

	unrouted atomic.Int64
}

// NewPublisher validates cfg and returns a Publisher. Call Start to connect.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
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
		stopping: make(chan struct{}),
		closeNow: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Start connects in the background and returns at once: a broker that is not
// up yet is retried with backoff while Publish calls wait (bounded by their
// contexts). Watch Done for errors that retrying cannot fix.
func (p *Publisher) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("amqp: publisher already started")
	}
	select {
	case <-p.stopping:
		return ErrClosed
	default:
	}
	p.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		<-p.closeNow
		cancel()
	}()
	go p.run(runCtx)
	return nil
}

// begin registers a publish call, or refuses it once Stop was called.
func (p *Publisher) begin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stopping:
		return ErrClosed
	default:
	}
	p.calls.Add(1)
	return nil
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

// Done is closed when the Publisher has stopped for good: after Stop, or on an
// error that reconnecting cannot fix (see Err).
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err returns why the Publisher stopped: nil after Stop, or a fatal error such
// as ErrTopologyMismatch. Valid once Done is closed.
func (p *Publisher) Err() error {
	select {
	case <-p.done:
		return p.fatal
	default:
		return nil
	}
}

// Unrouted counts events this Publisher kept in the unrouted queue.
func (p *Publisher) Unrouted() int64 { return p.unrouted.Load() }

// Publish sends ev to the domain exchange with ev.Type as routing key and
// returns once the broker confirmed it. ev.ID is set to a new UUIDv7 when empty.
// Errors: ctx's error (wrapped) when it ends first, ErrNacked, ErrClosed, or a
// validation error for a bad event. On any error the event may still have
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
	msg := publishing(ev, p.cfg.AppID, time.Now())
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

// published tells how a publish went: kept in the unrouted queue, and the
// time from its first send to the broker's answer.
type published struct {
	unrouted bool
	took     time.Duration
}

func (p *Publisher) publish(ctx context.Context, exchange, key string, msg amqp091.Publishing, keepUnrouted bool) (published, error) {
	if err := p.begin(); err != nil {
		return published{}, err
	}
	defer p.calls.Done()
	if err := p.acquire(ctx); err != nil {
		return published{}, err
	}
	return p.publishHolding(ctx, exchange, key, msg, keepUnrouted)
}

// BatchError reports which events of a PublishBatch failed. Errs has one entry
// per event, nil for those that were confirmed.
type BatchError struct {
	Errs   []error
	Failed int
}

func (e *BatchError) Error() string {
	for _, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("%d of %d events not confirmed; first error: %v", e.Failed, len(e.Errs), err)
		}
	}
	return "no error"
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error { return e.Errs }

// PublishBatch publishes all events, pipelined within the window, and waits for
// every confirm. It returns nil when all were confirmed, or a *BatchError that
// says which were not. IDs that were empty are filled in evs, so the caller
// can report them.
//
// The events are sent from the calling goroutine, as a hand-written confirm
// loop would: a goroutine per event (the obvious way, since each event may
// need republishing on its own) cost a fifth of the throughput.
func (p *Publisher) PublishBatch(ctx context.Context, evs []event.Event) error {
	if err := p.begin(); err != nil {
		return err
	}
	defer p.calls.Done()
	b := batch{p: p, ctx: ctx, evs: evs, errs: make([]error, len(evs))}
	for i := range evs {
		_, span, msg, err := p.prepare(ctx, &evs[i])
		if err != nil {
			b.errs[i] = err
			continue
		}
		it := &batchItem{i: i, span: span, msg: msg}
		if err := checkHeaders(it.msg); err != nil {
			b.finish(it, published{}, err)
			continue
		}
		it.began = time.Now()
		b.send(it)
		b.collect(false)
	}
	b.collect(true)
	// Events whose connection died before their confirm go again, on the
	// next connection, for as long as ctx allows.
	for len(b.again) > 0 {
		items := b.again
		b.again = nil
		for _, it := range items {
			if err := ctx.Err(); err != nil {
				b.finish(it, published{}, fmt.Errorf("message %s not confirmed: %w", it.msg.MessageId, err))
				continue
			}
			b.send(it)
			b.collect(false)
		}
		b.collect(true)
	}
	failed := 0
	for _, err := range b.errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return &BatchError{Errs: b.errs, Failed: failed}
	}
	return nil
}

// batch is the state of one PublishBatch call; only its goroutine uses it.
type batch struct {
	p     *Publisher
	ctx   context.Context
	evs   []event.Event
	errs  []error
	sent  []*batchItem // awaiting their confirm, oldest first
	again []*batchItem // lost with a connection: to be sent again
}

type batchItem struct {
	i     int // index in evs
	span  trace.Span
	msg   amqp091.Publishing
	began time.Time
	rec   *pending
}

func (b *batch) finish(it *batchItem, res published, err error) {
	b.p.record(it.span, b.evs[it.i].Type, res, err)
	b.errs[it.i] = err
}

// send publishes one item within the window. Its fate arrives on it.rec.done.
func (b *batch) send(it *batchItem) {
	p := b.p
	if err := p.acquire(b.ctx); err != nil {
		b.finish(it, published{}, err)
		return
	}
	s, err := p.session(b.ctx)
	if err != nil {
		p.release()
		b.finish(it, published{}, err)
		return
	}
	it.rec = &pending{exchange: p.cfg.Exchange, key: b.evs[it.i].Type, msg: it.msg, keepUnrouted: true,
		done: make(chan error, 1), slots: p.slots}
	if err := s.publish(b.ctx, it.rec); err != nil {
		if errors.Is(err, errConnLost) {
			b.again = append(b.again, it)
			return
		}
		b.finish(it, published{}, err)
		return
	}
	b.sent = append(b.sent, it)
}

// collect settles the items at the head of sent whose fate is known; with
// wait, all of them (or until ctx ends). Settling as we go keeps the memory
// of a large batch to about the window.
func (b *batch) collect(wait bool) {
	for len(b.sent) > 0 {
		it := b.sent[0]
		var err error
		select {
		case err = <-it.rec.done:
		default:
			if !wait {
				return
			}
			select {
			case err = <-it.rec.done:
			case <-b.ctx.Done():
				err = fmt.Errorf("message %s not confirmed: %w", it.msg.MessageId, b.ctx.Err())
			}
		}
		b.sent = b.sent[1:]
		switch {
		case errors.Is(err, errConnLost):
			b.again = append(b.again, it)
		case b.ctx.Err() != nil && err != nil:
			b.finish(it, published{}, err)
		default:
			// rec.unrouted was written before rec.done was sent.
			b.finish(it, published{unrouted: it.rec.unrouted, took: time.Since(it.began)}, err)
		}
	}
}

// publishTo sends msg to a queue by name through the default exchange. A
// return (no such queue) is ErrReturned. Used by the Worker for its hops.
func (p *Publisher) publishTo(ctx context.Context, queue string, msg amqp091.Publishing) error {
	_, err := p.publish(ctx, "", queue, msg, false)
	return err
}

// The hot paths below try the common case first with a one-case select
// (a plain channel operation) and fall back to the full select only when it
// would block: a select over several channels locks them all, and with 256
// callers that was 7–9% of the Publisher's CPU.

func (p *Publisher) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a publish slot: %w", ctx.Err())
	case <-p.closeNow:
		return ErrClosed
	}
}

func (p *Publisher) release() { <-p.slots }

// publishHolding publishes with a window slot already taken; the slot is
// given back when the message's fate is known (or the attempt failed).
func (p *Publisher) publishHolding(ctx context.Context, exchange, key string, msg amqp091.Publishing, keepUnrouted bool) (published, error) {
	if err := checkHeaders(msg); err != nil {
		p.release()
		return published{}, err
	}
	began := time.Now()
	for first := true; ; first = false {
		if !first {
			if err := p.acquire(ctx); err != nil {
				return published{}, err
			}
		}
		s, err := p.session(ctx)
		if err != nil {
			p.release()
			return published{}, err
		}
		rec := &pending{exchange: exchange, key: key, msg: msg, keepUnrouted: keepUnrouted,
			done: make(chan error, 1), slots: p.slots}
		if err := s.publish(ctx, rec); err != nil {
			if errors.Is(err, errConnLost) {
				continue
			}
			return published{}, err
		}
		if done := ctx.Done(); done == nil {
			err = <-rec.done // a context that never ends
		} else {
			select {
			case err = <-rec.done:
			case <-done:
				return published{}, fmt.Errorf("message %s not confirmed: %w", msg.MessageId, ctx.Err())
			}
		}
		if errors.Is(err, errConnLost) {
			p.log.Debug("republishing after connection loss", "message_id", msg.MessageId)
			continue
		}
		// rec.unrouted was written before rec.done was sent.
		return published{unrouted: rec.unrouted, took: time.Since(began)}, err
	}
}

// checkHeaders refuses headers the broker would refuse. Sent anyway, headers
// over frame_max make the broker close the connection with FRAME_ERROR, and
// every republish would do it again.
func checkHeaders(msg amqp091.Publishing) error {
	if err := msg.Headers.Validate(); err != nil {
		return fmt.Errorf("invalid headers: %w", err)
	}
	if n := tableSize(msg.Headers); n > MaxHeaderBytes {
		return fmt.Errorf("%w: about %d bytes of headers, the limit is %d", ErrHeadersTooLarge, n, MaxHeaderBytes)
	}
	return nil
}

// session waits for a live session.
func (p *Publisher) session(ctx context.Context) (*pubSession, error) {
	for {
		p.mu.Lock()
		s, ready := p.sess, p.ready
		p.mu.Unlock()
		if s != nil && !s.isDead() {
			return s, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("no broker connection: %w", ctx.Err())
		case <-p.closeNow:
			return nil, ErrClosed
		case <-p.done:
			if p.fatal != nil {
				return nil, p.fatal
			}
			return nil, ErrClosed
		}
	}
}

// Stop stops taking new publishes, waits for those in flight to be confirmed
// (or ctx to end), then closes the connection. It is safe to call twice or
// before Start. It returns ctx.Err() if ctx ended first.
func (p *Publisher) Stop(ctx context.Context) error {
	p.mu.Lock()
	select {
	case <-p.stopping:
	default:
		close(p.stopping)
	}
	started := p.started
	p.mu.Unlock()

	waited := make(chan struct{})
	go func() { p.calls.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.closeOnce.Do(func() { close(p.closeNow) })
	if started {
		<-p.done
	} else {
		p.finishRun(nil)
	}
	return err
}

// finishRun records why the Publisher stopped and closes Done, once.
func (p *Publisher) finishRun(err error) {
	p.doneOnce.Do(func() {
		p.fatal = err
		close(p.done)
	})
}

// run owns the connection: connect, serve until the session dies, reconnect.
// It keeps reconnecting while Stop waits for in-flight publishes, which may
// need a new connection to be confirmed; it ends when closeNow is closed.
func (p *Publisher) run(ctx context.Context) {
	var fatal error
	defer func() { p.finishRun(fatal) }()
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return
		}
		s, err := p.connect(ctx)
		if err != nil {
			if isFatal(err) {
				p.log.Error("publisher stopped", "err", err)
				fatal = err
				return
			}
			p.log.Warn("broker connection failed; retrying", "err", err, "attempt", attempt+1)
			if p.sleep(attempt) {
				return
			}
			continue
		}
		if attempt > 0 {
			p.log.Info("connected to broker")
		}
		p.mu.Lock()
		p.sess = s
		close(p.ready)
		p.mu.Unlock()
		p.connm.Up(true)

		began := time.Now()
		select {
		case <-s.dead:
		case <-p.closeNow:
			s.close()
		}
		p.mu.Lock()
		p.sess = nil
		p.ready = make(chan struct{})
		p.mu.Unlock()
		p.connm.Up(false)
		select {
		case <-p.closeNow:
			return
		default:
		}
		// A session that dies soon after it began counts as a failed
		// attempt, so a connection that keeps dying backs off too.
		if time.Since(began) > time.Minute {
			attempt = 0
		}
		p.log.Warn("broker connection lost; reconnecting", "err", s.cause(), "attempt", attempt+1)
		if p.sleep(attempt) {
			return
		}
	}
}

// sleep backs off; it reports true when the Publisher is stopping.
func (p *Publisher) sleep(attempt int) bool {
	t := time.NewTimer(p.cfg.Backoff.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-p.closeNow:
		return true
	}
}

func (p *Publisher) connect(ctx context.Context) (*pubSession, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var sock *corkConn
	conn, err := dial(dctx, p.cfg.URL, dialOptions{
		name:      p.cfg.Name,
		heartbeat: p.cfg.Heartbeat,
		wrapSocket: func(c net.Conn) net.Conn {
			sock = &corkConn{Conn: c}
			return sock
		},
	})
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = declareDomain(ch, p.cfg.Exchange)
	}
	if err == nil {
		err = ch.Confirm(false /* noWait */)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Buffers hold more than the window, so the client's reader never waits
	// on us (amqp091-go drops a notification that waits longer than 5s).
	// The writer's queue holds every message in flight: Window of them, plus
	// as many copies for the unrouted queue.
	n := 2*p.cfg.Window + 16
	s := &pubSession{
		p:         p,
		conn:      conn,
		sock:      sock,
		ch:        ch,
		pending:   map[uint64]*pending{},
		queue:     make(chan *pending, n),
		dead:      make(chan struct{}),
		unblocked: make(chan struct{}),
	}
	close(s.unblocked)
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	returns := ch.NotifyReturn(make(chan amqp091.Return, n))
	blocked := conn.NotifyBlocked(make(chan amqp091.Blocking, 4))
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	chClosed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	go s.loop(confirms, returns, blocked, closed, chClosed)
	go s.writer()
	return s, nil
}

// pending is one message awaiting its confirm.
type pending struct {
	exchange, key string
	msg           amqp091.Publishing
	keepUnrouted  bool
	returned      *amqp091.Return
	unrouted      bool // kept in the unrouted queue; set before done is sent
	done          chan error
	slots         chan struct{} // the window slot to give back; nil if none was taken
	once          sync.Once
}

// finish resolves the record once: gives the window slot back and tells the
// caller.
func (r *pending) finish(err error) {
	r.once.Do(func() {
		if r.slots != nil {
			<-r.slots
		}
		r.done <- err
	})
}

// pubSession is one connection and confirm-mode channel.
type pubSession struct {
	p    *Publisher
	conn *amqp091.Connection
	sock *corkConn // conn's socket; only the writer corks it
	ch   *amqp091.Channel

	// queue feeds the writer goroutine, the only one that publishes on ch.
	// One writer keeps "next sequence number" and the publish in order
	// without a lock, and it publishes back to back as a hand-written loop
	// does: with a mutex, 256 callers handed the channel to each other with
	// a goroutine switch per message.
	queue chan *pending

	pmu     sync.Mutex
	pending map[uint64]*pending
	closed  bool
	err     error

	dead      chan struct{}
	bmu       sync.Mutex
	unblocked chan struct{} // closed while the broker is not blocking us
}

func (s *pubSession) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

func (s *pubSession) cause() error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.err
}

// publish hands rec to the writer, which registers it under its sequence
// number and sends it; rec.done tells its fate. errConnLost means the session
// is gone and the caller should try the next one.
func (s *pubSession) publish(ctx context.Context, rec *pending) error {
	// A blocked connection (memory or disk alarm) stops reading our socket;
	// writing now would block without regard to ctx. Wait here instead.
	s.bmu.Lock()
	unblocked := s.unblocked
	s.bmu.Unlock()
	select {
	case <-unblocked:
	default:
		select {
		case <-unblocked:
		case <-s.dead:
			rec.finish(errConnLost)
			return errConnLost
		case <-ctx.Done():
			rec.finish(nil) // never sent: just give the slot back
			return fmt.Errorf("broker is blocking publishers (resource alarm): %w", ctx.Err())
		}
	}

	select {
	case s.queue <- rec:
	default:
		select {
		case s.queue <- rec:
		case <-s.dead:
			rec.finish(errConnLost)
			return errConnLost
		}
	}
	if s.isDead() {
		// The writer may have drained the queue and gone before rec
		// arrived; nothing will send or confirm it on this session now.
		// (finish is once: a rec already resolved keeps its outcome.)
		rec.finish(errConnLost)
	}
	return nil
}

// writer publishes what publish queues, until the session dies; then it
// hands back what is still queued.
func (s *pubSession) writer() {
	for {
		select {
		case rec := <-s.queue:
			s.writeBurst(rec)
			continue
		default:
		}
		select {
		case rec := <-s.queue:
			s.writeBurst(rec)
		case <-s.dead:
			for {
				select {
				case rec := <-s.queue:
					rec.finish(errConnLost)
				default:
					return
				}
			}
		}
	}
}

// maxBurst bounds how many queued messages go out in one socket write, so
// the first of them is not held back long and the broker gets to work.
const maxBurst = 64

// writeBurst sends rec and what is queued behind it (up to maxBurst) with the
// socket corked, so they leave in one write instead of one each (see
// corkConn). It takes only what is already queued; it never waits for more.
func (s *pubSession) writeBurst(rec *pending) {
	if len(s.queue) == 0 {
		s.write(rec)
		return
	}
	s.sock.cork()
	defer s.sock.uncork()
	s.write(rec)
	for range maxBurst - 1 {
		select {
		case rec = <-s.queue:
			s.write(rec)
		default:
			return
		}
	}
}

// write registers rec under its sequence number and sends it.
func (s *pubSession) write(rec *pending) {
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		rec.finish(errConnLost)
		return
	}
	seq := s.ch.GetNextPublishSeqNo()
	s.pending[seq] = rec
	s.pmu.Unlock()
	err := s.ch.Publish(rec.exchange, rec.key,
		true,  // mandatory: an unroutable message comes back as basic.return
		false, // immediate: unsupported by RabbitMQ
		rec.msg)
	if err != nil {
		s.pmu.Lock()
		delete(s.pending, seq)
		s.pmu.Unlock()
		rec.finish(errConnLost)
	}
}

// loop handles everything the broker sends about this session's publishes.
func (s *pubSession) loop(confirms <-chan amqp091.Confirmation, returns <-chan amqp091.Return,
	blocked <-chan amqp091.Blocking, closed, chClosed <-chan *amqp091.Error) {
	// Every notification channel is closed when the channel or connection
	// closes; a closed one must end the loop, not spin on zero values.
	drainReturns := func() {
		for {
			select {
			case r, ok := <-returns:
				if !ok {
					return
				}
				s.markReturned(r)
			default:
				return
			}
		}
	}
	confirm := func(c amqp091.Confirmation, ok bool) bool {
		if !ok {
			s.shutdown(closedWhy(closed, chClosed))
			return false
		}
		// The broker sends basic.return before the basic.ack of the same
		// message, and the client hands them over in that order; take
		// every return that is already here before resolving the ack.
		drainReturns()
		s.resolve(c)
		return true
	}
	for {
		// Confirms are most of what arrives: take those already waiting
		// with a plain receive, a bounded number at a time so that a steady
		// stream of them cannot keep the other notifications waiting.
	fast:
		for range 64 {
			select {
			case c, ok := <-confirms:
				if !confirm(c, ok) {
					return
				}
			default:
				break fast
			}
		}
		select {
		case r, ok := <-returns:
			if !ok {
				s.shutdown(errors.New("channel closed"))
				return
			}
			s.markReturned(r)
		case c, ok := <-confirms:
			if !confirm(c, ok) {
				return
			}
		case b, ok := <-blocked:
			if !ok {
				blocked = nil // the close notifications end the loop
				continue
			}
			s.setBlocked(b)
		case e := <-closed:
			s.shutdown(closeCause(e))
			return
		case e := <-chClosed:
			s.shutdown(closeCause(e))
			return
		}
	}
}

// closedWhy is the reason a closed notification channel was closed for: the
// broker's close error if it is already here.
func closedWhy(closed, chClosed <-chan *amqp091.Error) error {
	for _, c := range []<-chan *amqp091.Error{closed, chClosed} {
		select {
		case e, ok := <-c:
			if ok && e != nil {
				return e
			}
		default:
		}
	}
	return errors.New("channel closed")
}

func closeCause(e *amqp091.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

func (s *pubSession) setBlocked(b amqp091.Blocking) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	s.p.connm.Blocked(b.Active)
	if b.Active {
		s.p.log.Warn("broker is blocking publishers", "reason", b.Reason)
		select {
		case <-s.unblocked:
			s.unblocked = make(chan struct{})
		default:
		}
		return
	}
	s.p.log.Info("broker unblocked publishers")
	select {
	case <-s.unblocked:
	default:
		close(s.unblocked)
	}
}

// markReturned flags the oldest in-flight record that matches the return.
// Returns carry no sequence number, but they arrive in publish order, so the
// oldest unflagged record with the same id and key is the one.
func (s *pubSession) markReturned(r amqp091.Return) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	var best uint64
	for seq, rec := range s.pending {
		if rec.returned == nil && rec.msg.MessageId == r.MessageId && rec.key == r.RoutingKey &&
			rec.exchange == r.Exchange && (best == 0 || seq < best) {
			best = seq
		}
	}
	if best != 0 {
		s.pending[best].returned = &r
	}
}

func (s *pubSession) resolve(c amqp091.Confirmation) {
	s.pmu.Lock()
	rec, ok := s.pending[c.DeliveryTag]
	delete(s.pending, c.DeliveryTag)
	s.pmu.Unlock()
	if !ok {
		return
	}
	switch {
	case !c.Ack:
		rec.finish(ErrNacked)
	case rec.returned == nil:
		rec.finish(nil)
	case rec.keepUnrouted:
		// The broker dropped it (acked, but routed nowhere): keep a copy.
		go s.keepUnrouted(rec)
	default:
		rec.finish(fmt.Errorf("%w: %s to %q: %s", ErrReturned, rec.msg.MessageId, rec.key, rec.returned.ReplyText))
	}
}

// keepUnrouted stores an unroutable event in the unrouted queue on the same
// session, then resolves the original with that outcome. The copy records
// where the event was headed so it can be replayed to the exchange later.
func (s *pubSession) keepUnrouted(rec *pending) {
	msg := rec.msg
	h := make(amqp091.Table, len(msg.Headers)+2)
	for k, v := range msg.Headers {
		h[k] = v
	}
	h[HeaderRoutingKey] = rec.key
	h[HeaderExchange] = rec.exchange
	msg.Headers = h
	cp := &pending{exchange: "", key: UnroutedQueue(s.p.cfg.Exchange), msg: msg, done: make(chan error, 1)}
	err := s.publish(context.Background(), cp)
	if err == nil {
		err = <-cp.done
	}
	if err == nil {
		rec.unrouted = true
		s.p.unrouted.Add(1)
		s.p.log.Debug("event kept in unrouted queue", "event_id", msg.MessageId, "type", rec.key)
	} else if !errors.Is(err, errConnLost) {
		err = fmt.Errorf("keeping unroutable event in %q: %w", cp.key, err)
	}
	rec.finish(err)
}

// shutdown marks the session dead and hands every unconfirmed message back to
// its caller for republishing on the next session.
func (s *pubSession) shutdown(cause error) {
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		return
	}
	s.closed = true
	s.err = cause
	recs := s.pending
	s.pending = map[uint64]*pending{}
	s.pmu.Unlock()
	close(s.dead)
	for _, rec := range recs {
		rec.finish(errConnLost)
	}
	go func() { _ = s.conn.Close() }()
}

// close ends the session on purpose.
func (s *pubSession) close() {
	_ = s.conn.Close()
	<-s.dead
}
