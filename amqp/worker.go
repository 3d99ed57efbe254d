package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
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

// Worker defaults.
const (
	DefaultConcurrency    = 16
	DefaultPrefetch       = 64
	DefaultHandlerTimeout = 30 * time.Second
	DefaultMaxBody        = 16 << 20
	DefaultSampleInterval = 15 * time.Second
)

var appNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// ValidateAppName checks an app name: it becomes part of queue names.
func ValidateAppName(app string) error {
	if !appNameRe.MatchString(app) {
		return fmt.Errorf("app name %q: use 1-200 letters, digits, '_', '-' or '.', starting with a letter or digit", app)
	}
	return nil
}

// WorkerConfig configures a Worker. The zero value of every field means its
// default.
type WorkerConfig struct {
	// URL is the broker's AMQP URL. Defaults to DefaultURL.
	URL string
	// Exchange is the domain exchange. Defaults to DefaultExchange.
	Exchange string
	// App names the app; its queue is "events_<App>". Required.
	App string
	// QueueType of the app's queue: QueueQuorum (default) or QueueClassic.
	// Delay, dead-letter and unrouted queues are always quorum queues.
	QueueType string
	// EventTypes are the binding keys of the app's queue. Empty means: the
	// types of an *event.Registry handler without catch-all, else all ("#").
	EventTypes []string
	// Concurrency is how many handlers run at once. Defaults to 16.
	Concurrency int
	// Prefetch is how many unacked deliveries the broker sends ahead.
	// Defaults to 64; it is raised to Concurrency if lower.
	Prefetch int
	// HandlerTimeout bounds one handler call: its context ends then, and a
	// timeout counts as a retryable failure. A handler still running a tenth
	// later (at most 1s) is abandoned and its event retried. Defaults to 30s.
	HandlerTimeout time.Duration
	// Retry is the delayed-retry policy. Defaults to 1s,10s,1m,5m and 5 attempts.
	Retry retry.Policy
	// DeliveryLimit is the quorum queue's x-delivery-limit: after that many
	// deliveries without ack (a worker crashing on the message each time) the
	// broker dead-letters it. Defaults to 20. Ignored for classic queues.
	DeliveryLimit int
	// MaxBody is the largest body accepted. A larger one is not read into
	// memory: its frames are discarded as they arrive, the delivery is
	// rejected, and the app queue's dead-lettering moves the message whole
	// to the dead-letter queue (reason "oversized"). A worker therefore
	// holds at most Prefetch bodies of MaxBody bytes. Defaults to 16 MiB.
	MaxBody int
	// Backoff is the reconnect schedule. Defaults to 100ms doubling up to 30s.
	Backoff retry.Backoff
	// Heartbeat is the AMQP heartbeat interval of both connections.
	// Defaults to DefaultHeartbeat (10s).
	Heartbeat time.Duration
	// Logger receives worker events. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records deliveries, handler calls, connections and sampled
	// queue depths. Defaults to nil: no metrics.
	Metrics *metrics.Metrics
	// SampleInterval is how often queue depths are sampled for Metrics
	// (one passive declare per queue). Defaults to 15s.
	SampleInterval time.Duration
	// TracerProvider makes the process and settle spans. Defaults to otel's
	// global provider. The handler's context carries the publisher's trace
	// context either way.
	TracerProvider trace.TracerProvider
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.QueueType == "" {
		c.QueueType = QueueQuorum
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	c.Prefetch = max(c.Prefetch, c.Concurrency)
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	c.Retry = c.Retry.WithDefaults()
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = DefaultDeliveryLimit
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	return c
}

func (c WorkerConfig) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case ValidateAppName(c.App) != nil:
		return bad("%v", ValidateAppName(c.App))
	case c.QueueType != QueueQuorum && c.QueueType != QueueClassic:
		return bad("queue type %q: use %q or %q", c.QueueType, QueueQuorum, QueueClassic)
	case c.Concurrency < 1:
		return bad("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Prefetch > 65535:
		return bad("prefetch must be at most 65535, got %d", c.Prefetch)
	case c.HandlerTimeout < 0:
		return bad("handler timeout must be positive, got %v", c.HandlerTimeout)
	case c.DeliveryLimit < 1:
		return bad("delivery limit must be at least 1, got %d", c.DeliveryLimit)
	case c.MaxBody < 0:
		return bad("max body must be positive, got %d", c.MaxBody)
	case c.SampleInterval < 0:
		return bad("sample interval must be positive, got %v", c.SampleInterval)
	}
	for _, k := range c.EventTypes {
		if err := ValidateBindingKey(k); err != nil {
			return bad("%v", err)
		}
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return validateURL(c.URL)
}

// Worker consumes an app's queue and hands each event to a Handler. Success
// acks it; a failure sends it to a delay queue for a later attempt; a permanent
// failure or the last attempt sends it to the dead-letter queue. Many Worker
// processes of one app share the queue.
type Worker struct {
	cfg     WorkerConfig
	log     *slog.Logger
	handler event.Handler
	topo    appTopology
	hops    *Publisher // retries and dead letters, on its own connection
	m       *metrics.WorkerMetrics
	connm   *metrics.ConnMetrics
	tracer  trace.Tracer
	// spanName of the process spans, built once.
	spanName string

	jobs     chan job
	inflight sync.WaitGroup // handler calls in progress

	mu       sync.Mutex
	started  bool
	ready    chan struct{} // closed while consuming
	consumer atomic.Bool

	stopping  chan struct{} // closed by Stop: take no more deliveries
	hardStop  context.Context
	hardAbort context.CancelFunc // cancels handler contexts
	done      chan struct{}
	doneOnce  sync.Once
	fatal     error
	loops     sync.WaitGroup

	handled, retried, dead atomic.Int64
}

type job struct {
	d   amqp091.Delivery
	gen uint64
	s   *workerSession
}

// NewWorker validates cfg and returns a Worker that calls h. Call Start to run.
func NewWorker(cfg WorkerConfig, h event.Handler) (*Worker, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bindings := slices.Clone(cfg.EventTypes)
	if len(bindings) == 0 {
		if r, ok := h.(*event.Registry); ok {
			if types, catchAll := r.Types(); !catchAll && len(types) > 0 {
				bindings = types
			}
		}
	}
	if len(bindings) == 0 {
		bindings = []string{"#"}
	}
	slices.Sort(bindings)
	bindings = slices.Compact(bindings)
	queue := AppQueue(cfg.App)
	log := cfg.Logger.With("component", "worker", "app", cfg.App)
	hops, err := NewPublisher(PublisherConfig{
		URL:       cfg.URL,
		Exchange:  cfg.Exchange,
		Window:    max(cfg.Concurrency, 16),
		Name:      "eventfleet-worker-" + cfg.App + "-hops",
		Backoff:   cfg.Backoff,
		Heartbeat: cfg.Heartbeat,
		Logger:    cfg.Logger.With("app", cfg.App),
		Metrics:   cfg.Metrics,
		role:      metrics.RoleHops,

		TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		return nil, err
	}
	hard, abort := context.WithCancel(context.Background())
	return &Worker{
		cfg:      cfg,
		log:      log,
		handler:  h,
		hops:     hops,
		m:        cfg.Metrics.Worker(cfg.App),
		connm:    cfg.Metrics.Conn(metrics.RoleConsumer),
		tracer:   tracing.Tracer(cfg.TracerProvider),
		spanName: "process " + queue,
		topo: appTopology{
			exchange:      cfg.Exchange,
			queue:         queue,
			queueType:     cfg.QueueType,
			deliveryLimit: cfg.DeliveryLimit,
			bindings:      bindings,
			delays:        cfg.Retry.Stages(),
		},
		jobs:      make(chan job),
		ready:     make(chan struct{}),
		stopping:  make(chan struct{}),
		hardStop:  hard,
		hardAbort: abort,
		done:      make(chan struct{}),
	}, nil
}

// Queue returns the name of the app's queue.
func (w *Worker) Queue() string { return w.topo.queue }

// Bindings returns the binding keys the app's queue gets.
func (w *Worker) Bindings() []string { return slices.Clone(w.topo.bindings) }

// Start begins consuming in the background and returns at once. A broker that
// is not up yet is retried with backoff; Ready is closed once consuming.
// Errors that reconnecting cannot fix (ErrTopologyMismatch) stop the Worker:
// watch Done and Err.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("amqp: worker already started")
	}
	select {
	case <-w.stopping:
		return ErrClosed
	default:
	}
	w.started = true
	if err := w.hops.Start(ctx); err != nil {
		return err
	}
	for range w.cfg.Concurrency {
		w.loops.Add(1)
		go w.handleLoop()
	}
	go w.run()
	return nil
}

// Ready returns a channel closed while the Worker is consuming; a new one is
// handed out after each disconnect.
func (w *Worker) Ready() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ready
}

// Consuming reports whether the Worker has a live consumer now.
func (w *Worker) Consuming() bool { return w.consumer.Load() }

// Done is closed when the Worker has stopped: after Stop, or on a fatal error.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err returns the fatal error that stopped the Worker, once Done is closed.
func (w *Worker) Err() error {
	select {
	case <-w.done:
		return w.fatal
	default:
		return nil
	}
}

// Stats are counts since Start.
type Stats struct {
	Handled, Retried, DeadLettered int64
}

// Stats returns counts of outcomes since Start.
func (w *Worker) Stats() Stats {
	return Stats{Handled: w.handled.Load(), Retried: w.retried.Load(), DeadLettered: w.dead.Load()}
}

// Stop stops taking deliveries (deliveries already received but not started go
// back to the head of the queue, in order), waits for running handlers to finish and settle their
// messages, then closes the connections. If ctx ends first, running handlers'
// contexts are cancelled, their messages are left unacked (the broker
// redelivers them) and Stop returns ctx.Err(). Safe to call twice or before
// Start.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	select {
	case <-w.stopping:
	default:
		close(w.stopping)
	}
	started := w.started
	w.mu.Unlock()
	if !started {
		w.finish(nil)
		return nil
	}
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		err = ctx.Err()
		w.hardAbort()
		<-w.done
	}
	return err
}

func (w *Worker) finish(err error) {
	w.doneOnce.Do(func() {
		w.fatal = err
		close(w.done)
	})
}

// run owns the consuming connection. It ends after Stop (once handlers have
// drained) or on a fatal error.
func (w *Worker) run() {
	var fatal error
	defer func() {
		close(w.jobs)
		w.loops.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.hops.Stop(ctx)
		cancel()
		w.hardAbort()
		w.finish(fatal)
	}()
	var gen uint64
	consumed := false
	for attempt := 0; ; attempt++ {
		if w.isStopping() {
			return
		}
		gen++
		s, err := w.connect(gen)
		if err != nil {
			if isFatal(err) {
				w.log.Error("worker stopped", "err", err)
				fatal = err
				w.mu.Lock()
				select {
				case <-w.stopping:
				default:
					close(w.stopping)
				}
				w.mu.Unlock()
				return
			}
			w.log.Warn("cannot consume; retrying", "err", err, "attempt", attempt+1)
			if w.sleep(attempt) {
				return
			}
			continue
		}
		if consumed {
			w.log.Info("consuming again", "queue", w.topo.queue, "connection", gen)
		} else {
			// Logged once, on the first session that consumes, even after
			// failed attempts: deploy checks and tests wait for it.
			w.log.Info("consuming", "queue", w.topo.queue, "bindings", w.topo.bindings,
				"concurrency", w.cfg.Concurrency, "prefetch", w.cfg.Prefetch)
			consumed = true
		}
		// Consuming is true before Ready closes: whoever waited for Ready
		// (a readiness probe, a test) must not see false after it.
		w.consumer.Store(true)
		w.mu.Lock()
		close(w.ready)
		w.mu.Unlock()
		w.connm.Up(true)
		sampled := w.startSampling(s)

		began := time.Now()
		cause := w.serve(s)

		sampled()
		w.consumer.Store(false)
		w.connm.Up(false)
		w.mu.Lock()
		w.ready = make(chan struct{})
		w.mu.Unlock()
		if w.isStopping() {
			s.drainAndClose(w)
			return
		}
		_ = s.conn.Close()
		// A session that ends soon after it began counts as a failed
		// attempt, so a consumer that keeps dying backs off too.
		if time.Since(began) > time.Minute {
			attempt = 0
		}
		w.log.Warn("consumer stopped; reconnecting", "err", cause, "connection", gen, "attempt", attempt+1)
		if w.sleep(attempt) {
			return
		}
	}
}

func (w *Worker) isStopping() bool {
	select {
	case <-w.stopping:
		return true
	default:
		return false
	}
}

func (w *Worker) sleep(attempt int) bool {
	t := time.NewTimer(w.cfg.Backoff.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-w.stopping:
		return true
	}
}

// workerSession is one consuming connection.
type workerSession struct {
	gen        uint64
	conn       *amqp091.Connection
	ch         *amqp091.Channel
	tag        string
	deliveries <-chan amqp091.Delivery
	cancels    chan string
	closed     chan *amqp091.Error
	dead       chan struct{} // closed when the channel is gone
	deadOnce   sync.Once
	// widened: the session has left its cautious start (see widen);
	// cautious is the narrow consumer's delivery stream until it ends.
	// Only serve and drainAndClose touch them.
	widened  bool
	cautious <-chan amqp091.Delivery
	// acks batches this channel's acks (see acker).
	acks *acker
}

func (s *workerSession) markDead() { s.deadOnce.Do(func() { close(s.dead) }) }

func (s *workerSession) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

func (w *Worker) connect(gen uint64) (*workerSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		select {
		case <-w.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := dial(ctx, w.cfg.URL, dialOptions{name: "eventfleet-worker-" + w.cfg.App, heartbeat: w.cfg.Heartbeat, maxBody: w.cfg.MaxBody})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*workerSession, error) {
		_ = conn.Close()
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	if err := w.topo.declare(ch); err != nil {
		return fail(err)
	}
	// Start cautious: one delivery at a time until the first delivery that
	// was never delivered before (see widen).
	if err := ch.Qos(1, 0, false); err != nil {
		return fail(fmt.Errorf("set prefetch: %w", err))
	}
	host, _ := os.Hostname()
	tag := fmt.Sprintf("eventfleet-%s-%s-%d-%d", w.cfg.App, host, os.Getpid(), gen)
	s := &workerSession{gen: gen, conn: conn, ch: ch, tag: tag, dead: make(chan struct{})}
	s.acks = newAcker(ch, func(err error) {
		w.log.Warn("acks failed; the broker will redeliver what was not acked (duplicates possible)",
			"err", err, "connection", gen)
	})
	s.cancels = ch.NotifyCancel(make(chan string, 1))
	s.closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	s.deliveries, err = ch.Consume(w.topo.queue, tag,
		false, // autoAck: we ack after the handler or the hop succeeded
		false, // exclusive: the app's workers share the queue
		false, // noLocal: unsupported by RabbitMQ
		false, // noWait
		nil)
	if err != nil {
		return fail(fmt.Errorf("consume %q: %w", w.topo.queue, err))
	}
	return s, nil
}

// serve feeds deliveries to the handlers until the session ends or the
// Worker is stopping. It returns why the session ended.
func (w *Worker) serve(s *workerSession) error {
	// delivered handles what the (widened) consumer's channel gave.
	delivered := func(d amqp091.Delivery, ok bool) error {
		if !ok {
			s.markDead()
			select {
			case e := <-s.closed:
				return closeCause(e)
			case tag := <-s.cancels:
				return w.cancelled(tag)
			default:
				return errors.New("delivery channel closed")
			}
		}
		if !s.widened && !d.Redelivered {
			s.widened = true
			if err := w.widen(s); err != nil {
				return fmt.Errorf("open the prefetch window: %w", err)
			}
		}
		return nil
	}
	for {
		// Stopping is checked on every turn, so a steady stream of
		// deliveries taken by the fast path below cannot hide it.
		if w.isStopping() {
			return nil
		}
		var d amqp091.Delivery
		var ok bool
		// A delivery already waiting is taken with a plain receive; the full
		// select locks every channel it names (as in the Publisher). Not
		// while the narrow consumer's last delivery may still come: a full
		// window must not keep it waiting.
		fast := s.cautious == nil
		if fast {
			select {
			case d, ok = <-s.deliveries:
			default:
				fast = false
			}
		}
		if fast {
			if err := delivered(d, ok); err != nil {
				return err
			}
		} else {
			select {
			case d, ok = <-s.deliveries:
				if err := delivered(d, ok); err != nil {
					return err
				}
			case d, ok = <-s.cautious:
				if !ok {
					s.cautious = nil // the narrow consumer is done
					continue
				}
			case tag := <-s.cancels:
				s.markDead()
				return w.cancelled(tag)
			case e := <-s.closed:
				s.markDead()
				return closeCause(e)
			case <-w.stopping:
				return nil
			}
		}
		s.acks.seen(d.DeliveryTag)
		// Counted as in flight before it is handed over, so that a Stop
		// right after the hand-over waits for it.
		w.inflight.Add(1)
		w.m.InFlight(1)
		j := job{d: d, gen: s.gen, s: s}
		select {
		case w.jobs <- j: // a handler goroutine was waiting
		default:
			select {
			case w.jobs <- j:
			case <-w.stopping:
				// Not started: it stays unacked and goes back to the head of
				// the queue when drainAndClose closes the channel.
				w.inflight.Done()
				w.m.InFlight(-1)
				return nil
			}
		}
	}
}

// cancelled is why a session ended when the broker cancelled its consumer,
// which it does when the queue is deleted. Reconnecting declares it again.
func (w *Worker) cancelled(tag string) error {
	return fmt.Errorf("broker cancelled consumer %s (queue %q deleted?)", tag, w.topo.queue)
}

// widen ends a session's cautious start. A session first consumes with
// prefetch 1: the queue hands back what a previous consumer left unacked
// first, and if one of those crashes workers every time, a crash with one
// delivery in flight returns only it, so the quorum delivery limit counts
// against it alone rather than against every good event that shared a
// prefetch window with it (measured: 10 of 50 good events dead-lettered with
// the window open from the start). At the first delivery that was never
// delivered before, widen opens the full window. basic.qos only applies to
// consumers started after it, so widen starts a second consumer with the full
// prefetch and cancels the narrow one; the narrow one's last delivery stays
// ackable on the channel and arrives through s.cautious.
func (w *Worker) widen(s *workerSession) error {
	if err := s.ch.Qos(w.cfg.Prefetch, 0, false); err != nil {
		return err
	}
	tag := s.tag + "-w"
	ds, err := s.ch.Consume(w.topo.queue, tag,
		false, // autoAck
		false, // exclusive
		false, // noLocal
		false, // noWait
		nil)
	if err != nil {
		return err
	}
	if err := s.ch.Cancel(s.tag, false /* noWait */); err != nil {
		return err
	}
	s.cautious, s.deliveries, s.tag = s.deliveries, ds, tag
	return nil
}

// drainAndClose ends a session on Stop: wait for running handlers (they need
// the channel to ack), send their acks, then close. Deliveries the broker sent
// ahead but no handler took stay unacked until the close, which returns them
// to the head of the queue in their order. (A nack with requeue, or
// cancelling the consumer first, would put them at the tail of a quorum
// queue, measured on 3.10.8.)
func (s *workerSession) drainAndClose(w *Worker) {
	w.waitInflight()
	s.acks.flush()
	s.markDead()
	_ = s.conn.Close()
}

// waitInflight waits for running handlers, or for a hard stop. After a hard
// stop the handlers' messages stay unacked and go back when the connection
// closes.
func (w *Worker) waitInflight() {
	idle := make(chan struct{})
	go func() { w.inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-w.hardStop.Done():
	}
}

// handleLoop is one of the Concurrency handler loops. Each runs the handlers
// of the deliveries it takes on its own goroutine; a loop whose handler
// overruns its timeout is abandoned by its slot (see handlerSlot), which
// starts a new loop in its place.
func (w *Worker) handleLoop() {
	s := w.newSlot()
	for j := range w.jobs {
		if w.process(j, s) {
			// The slot settled the delivery, and the new loop took this
			// one's place in w.loops: Stop no longer waits for it.
			return
		}
		w.m.InFlight(-1)
		w.inflight.Done() // added by serve
	}
	s.close()
	w.loops.Done()
}

// process runs one delivery to its end: handler, then ack or hop. It reports
// whether the handler was abandoned; the slot settles the delivery then.
func (w *Worker) process(j job, s *handlerSlot) (abandoned bool) {
	d := &j.d
	ev, err := decode(d, w.cfg.MaxBody)
	// The handler continues the publisher's trace, carried in the headers.
	ctx, span := w.startSpan(d, &ev)
	if err != nil {
		w.undecodable(ctx, span, j, ev, err)
		span.End()
		return false
	}
	c := handlerCall{j: j, ev: ev, ctx: ctx, span: span, began: time.Now()}
	abandoned, err = s.call(&c)
	if abandoned {
		return true
	}
	w.conclude(&c, err)
	return false
}

// conclude settles a delivery whose handler returned err (or was abandoned
// with err), and ends its span.
func (w *Worker) conclude(c *handlerCall, err error) {
	j, ev, ctx, span := c.j, c.ev, c.ctx, c.span
	defer span.End()
	d := &j.d
	// Built only on the failure paths: the success path logs nothing, and a
	// logger per message cost 2.5% of a no-op worker's CPU.
	log := func() *slog.Logger { return w.eventLog(span, ev) }
	w.m.Handled(ev.Type, time.Since(c.began))
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case err == nil:
		j.s.acks.ack(d.DeliveryTag)
		w.handled.Add(1)
		w.settled(span, ev.Type, metrics.Ack)
	case w.hardStop.Err() != nil:
		// Hard stop: leave it unacked; it goes back to the queue.
	case retry.IsPermanent(err):
		log().Warn("permanent failure; dead-lettering", "err", err)
		w.hop(ctx, j, ev, ReasonPermanent, 0, err)
	default:
		delay, dead := w.cfg.Retry.Next(ev.Attempt)
		if dead {
			log().Warn("attempts exhausted; dead-lettering", "err", err, "max_attempts", w.cfg.Retry.MaxAttempts)
			w.hop(ctx, j, ev, ReasonExhausted, 0, err)
			return
		}
		log().Info("handler failed; retrying later", "err", err, "delay", delay.String())
		w.hop(ctx, j, ev, "", delay, err)
	}
}

// undecodable dead-letters a delivery no handler can use. Most are moved
// with a confirmed hop that records why (the body is at most MaxBody). One
// whose body the connection withheld (over MaxBody) has no body to publish:
// it is rejected, and the app queue's dead-lettering moves the message,
// unchanged, to the dead-letter queue, so nothing is held or uploaded again.
// That move is at least once on a quorum app queue; a classic queue
// dead-letters at most once (a broker crash during the move can lose it).
func (w *Worker) undecodable(ctx context.Context, span trace.Span, j job, ev event.Event, err error) {
	log := w.eventLog(span, ev)
	if !errors.Is(err, errOversized) {
		log.Warn("undecodable message; dead-lettering", "err", err)
		w.hop(ctx, j, ev, ReasonUndecodable, 0, err)
		return
	}
	log.Warn("body over the limit; rejecting it to the dead-letter queue", "err", err)
	if !j.s.alive() {
		return // the broker requeues it with the channel
	}
	if nerr := j.s.acks.nack(j.d.DeliveryTag, false /* requeue */); nerr != nil {
		w.settled(span, ev.Type, metrics.Requeue)
		log.Warn("cannot reject; the broker redelivers it", "err", nerr)
		return
	}
	w.settled(span, ev.Type, metrics.DeadLetter)
	w.dead.Add(1)
}

// startSpan starts the consumer span of a delivery as a child of the trace
// context in its headers. With the default no-op tracer it only carries that
// context to the handler, so attributes are set only on a span that records.
func (w *Worker) startSpan(d *amqp091.Delivery, ev *event.Event) (context.Context, trace.Span) {
	ctx := tracing.Extract(w.hardStop, d.Headers)
	ctx, span := w.tracer.Start(ctx, w.spanName, consumerSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.System, tracing.OpName.String("process"), tracing.OpType.String("process"),
			tracing.Destination.String(originalExchange(d)), tracing.RoutingKey.String(originalKey(d)),
			tracing.Consumer.String(w.cfg.App), tracing.MessageID.String(ev.ID),
			tracing.BodySize.Int(len(d.Body)), tracing.DeliveryTag.Int64(int64(d.DeliveryTag)),
			tracing.EventType.String(ev.Type), tracing.Attempt.Int(ev.Attempt))
	}
	return ctx, span
}

// eventLog is the logger for lines about one event; it names the trace when
// there is one, so logs and traces can be joined.
func (w *Worker) eventLog(span trace.Span, ev event.Event) *slog.Logger {
	log := w.log.With("event_id", ev.ID, "type", ev.Type, "attempt", ev.Attempt)
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String())
	}
	return log
}

// settled counts a delivery's outcome and notes it on its span.
func (w *Worker) settled(span trace.Span, typ, outcome string) {
	w.m.Settled(typ, outcome)
	if span.IsRecording() {
		span.SetAttributes(tracing.Outcome.String(outcome))
	}
}

// hop moves a delivery to a delay queue (reason "") or the dead-letter queue,
// publishing with a confirm before acking. A hop that cannot be confirmed
// leaves the delivery to the broker: it is requeued after a pause, and the
// quorum delivery limit bounds how often.
func (w *Worker) hop(ctx context.Context, j job, ev event.Event, reason Reason, delay time.Duration, cause error) {
	d := &j.d
	if !j.s.alive() {
		// The channel is gone, so the broker requeues this delivery anyway;
		// a hop now would only make a duplicate.
		return
	}
	now := time.Now()
	target := DeadQueue(w.topo.queue)
	msg := republishing(d, ev.ID, func(h amqp091.Table) {
		if reason == "" {
			MarkFailed(h, cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt + 1)
		} else {
			MarkDead(h, reason, w.cfg.App, cause.Error(), now)
			h[HeaderAttempt] = int32(ev.Attempt)
		}
	})
	outcome := metrics.DeadLetter
	if reason == "" {
		target = RetryQueue(w.topo.queue, delay)
		outcome = metrics.Retry
	}
	process := trace.SpanFromContext(ctx)
	ctx, span := w.tracer.Start(ctx, "settle "+target, producerSpan...)
	if span.IsRecording() {
		span.SetAttributes(tracing.System, tracing.OpName.String("settle"), tracing.OpType.String("settle"),
			tracing.Destination.String(target), tracing.MessageID.String(ev.ID), tracing.Outcome.String(outcome))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := w.hops.publishTo(ctx, target, msg)
	cancel()
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if err != nil {
		w.settled(process, ev.Type, metrics.Requeue)
		w.eventLog(process, ev).Error("cannot move event; leaving it to the broker", "target", target, "err", err)
		if w.hardStop.Err() == nil {
			// A short pause so a broker-side problem does not become a hot
			// loop of redeliveries.
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-w.hardStop.Done():
			}
			t.Stop()
			_ = j.s.acks.nack(d.DeliveryTag, true /* requeue */)
		}
		return
	}
	j.s.acks.ack(d.DeliveryTag)
	w.settled(process, ev.Type, outcome)
	if reason == "" {
		w.retried.Add(1)
	} else {
		w.dead.Add(1)
	}
}

// startSampling samples the depths of the app's queue, its retry queues and
// its dead-letter queue every SampleInterval on a channel of its own, while
// the session lasts; the returned function stops it. Nothing runs without
// Metrics.
func (w *Worker) startSampling(s *workerSession) (stop func()) {
	if w.m == nil {
		return func() {}
	}
	type queue struct{ name, kind string }
	queues := []queue{{w.topo.queue, metrics.KindApp}, {DeadQueue(w.topo.queue), metrics.KindDeadLetter}}
	for _, d := range w.topo.delays {
		queues = append(queues, queue{RetryQueue(w.topo.queue, d), metrics.KindRetry})
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ch *amqp091.Channel
		defer func() {
			if ch != nil {
				_ = ch.Close()
			}
		}()
		t := time.NewTicker(w.cfg.SampleInterval)
		defer t.Stop()
		for {
			for _, q := range queues {
				if ch == nil || ch.IsClosed() {
					var err error
					if ch, err = s.conn.Channel(); err != nil {
						ch = nil
						break // the session is ending
					}
				}
				// A passive declare reads the depth without creating or
				// changing anything; a missing queue closes the channel,
				// which is reopened for the next one.
				if st, err := ch.QueueDeclarePassive(q.name, false, false, false, false, nil); err == nil {
					w.m.QueueDepth(q.name, q.kind, st.Messages)
				}
			}
			select {
			case <-t.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}
