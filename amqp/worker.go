package amqp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/tracing"
)

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
	// nodes is the cursor over cfg.URL's addresses for the consuming
	// connection (hops has its own); only run moves it.
	nodes *endpoints

	jobs     chan job
	inflight sync.WaitGroup // handler calls in progress

	// life: Stopping takes no more deliveries; a halt (Stop's context
	// ended) cancels handler contexts and leaves their messages unacked.
	life  *lifecycle.Lifecycle
	loops sync.WaitGroup // handler loops

	mu       sync.Mutex
	ready    chan struct{} // closed while consuming
	consumer atomic.Bool

	handled, retried, dead atomic.Int64
	holding                atomic.Int64 // deliveries held because the broker refuses their hop (holdRefused)
	last                   lastError    // why it is not consuming; written by run

	// toldLegacy: the queues kept with their old arguments were logged;
	// toldKeptSize: those kept with their own initial group size. Written
	// and read by run's goroutine only (connect).
	toldLegacy, toldKeptSize bool
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
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
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
	topo := appTopology{
		exchange:      cfg.Exchange,
		passive:       cfg.Topology == TopologyPassive,
		queue:         queue,
		queueType:     cfg.QueueType,
		deliveryLimit: cfg.DeliveryLimit,
		groupSize:     cfg.QuorumInitialGroupSize,
		bindings:      bindings,
		delays:        cfg.Retry.Stages(),
	}
	nodes, err := newEndpoints(cfg.URL)
	if err != nil {
		return nil, urlConfigError("URL", cfg.URL, err) // Validate has checked it
	}
	hops, err := NewPublisher(PublisherConfig{
		URL:       cfg.URL,
		TLS:       cfg.TLS,
		Exchange:  cfg.Exchange,
		Topology:  cfg.Topology,
		Window:    max(cfg.Concurrency, 16),
		Name:      "eventfleet-worker-" + cfg.App + "-hops",
		Backoff:   cfg.Backoff,
		Heartbeat: cfg.Heartbeat,
		Logger:    cfg.Logger.With("app", cfg.App),
		Metrics:   cfg.Metrics,
		role:      metrics.RoleHops,
		// The hops connection declares the app's own topology, never
		// the shared one (own_topology.go).
		ownTopology:  topo.declareOwnOn,
		hopsExchange: topo.hops(),

		TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		return nil, err
	}
	return &Worker{
		cfg:      cfg,
		log:      log,
		handler:  h,
		hops:     hops,
		nodes:    nodes,
		m:        cfg.Metrics.Worker(cfg.App),
		connm:    cfg.Metrics.Conn(metrics.RoleConsumer),
		tracer:   tracing.Tracer(cfg.TracerProvider),
		spanName: "process " + queue,
		topo:     topo,
		jobs:     make(chan job),
		ready:    make(chan struct{}),
		life:     lifecycle.New(),
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
	if err := w.life.Start(); err != nil {
		return startError(err)
	}
	if err := w.hops.Start(ctx); err != nil {
		w.life.Finish(err)
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

// LastError says why the Worker is not consuming: the error of the latest
// failed attempt to connect and consume, or of the session that ended (it
// may name ErrAccessRefused: a wrong password, or no read permission on the
// queue; ErrVhostNotFound, ErrTLS or ErrHandshakeTimeout). It is nil while
// consuming and before the first attempt has failed; see HopsRefused for
// retries and dead letters the broker refuses meanwhile.
func (w *Worker) LastError() error {
	if w.Consuming() {
		return nil
	}
	return w.last.get()
}

// Node names the broker node (host:port) the Worker consumes from, or while
// it does not, the one it tries next: one of the URLs of its
// WorkerConfig.URL. Its retries and dead letters go over a connection of
// their own, which may use another node of the list.
func (w *Worker) Node() string { return w.nodes.node() }

// Done is closed when the Worker has stopped: after Stop, or on a fatal error.
func (w *Worker) Done() <-chan struct{} { return w.life.Done() }

// Err returns the fatal error that stopped the Worker, once Done is closed.
func (w *Worker) Err() error { return w.life.Err() }

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
	if !w.life.Stop() {
		return nil
	}
	select {
	case <-w.life.Done():
		return nil
	case <-ctx.Done():
		w.life.Halt()
		<-w.life.Done()
		return ctx.Err()
	}
}

// hardStop is the context a hard stop cancels; handler contexts derive from it.
func (w *Worker) hardStop() context.Context { return w.life.HaltContext() }

// run owns the consuming connection. It ends after Stop (once handlers have
// drained) or on a fatal error.
func (w *Worker) run() {
	consumed := false
	err := lifecycle.Loop[*workerSession]{
		Backoff:   w.cfg.Backoff,
		Addresses: w.nodes.len(),
		Quit:      w.life.Stopping(),
		Connect:   w.connect,
		Fatal:     isFatal,
		Serve: func(s *workerSession, gen uint64, _ int) error {
			if consumed {
				w.log.Info("consuming again", "queue", w.topo.queue, "node", w.nodes.node(), "connection", gen)
			} else {
				// Logged once, on the first session that consumes, even
				// after failed attempts: deploy checks and tests wait for it.
				w.log.Info("consuming", "queue", w.topo.queue, "node", w.nodes.node(), "bindings", w.topo.bindings,
					"concurrency", w.cfg.Concurrency, "prefetch", w.cfg.Prefetch)
				consumed = true
			}
			w.last.set(nil)
			return w.consume(s)
		},
		Failed: func(err error, lost bool, gen uint64, attempt int) {
			w.last.set(err)
			node := w.nodes.failed()
			if lost {
				w.log.Warn("consumer stopped; reconnecting", "err", err, "node", node, "connection", gen, "attempt", attempt)
			} else {
				w.log.Warn("cannot consume; retrying", "err", err, "node", node, "attempt", attempt)
			}
		},
	}.Run()
	if err != nil {
		w.log.Error("worker stopped", "err", err)
		w.life.Stop()
	}
	close(w.jobs)
	w.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = w.hops.Stop(ctx)
	cancel()
	w.life.Halt()
	w.life.Finish(err)
}
