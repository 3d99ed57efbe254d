// Command efbench measures eventfleet side by side with a bare amqp091-go
// client (the reference: what the broker allows) and watermill-amqp (a
// peer), on the broker at AMQP_URL.
//
// Contenders run alternating in one run (A B C A B C …, -rounds times) with
// the same message size, persistent messages and durable queues, for each
// queue type in -queue. It prints Markdown tables of medians and ratios on
// stdout, progress on stderr, and writes every sample to -out as JSON.
// Every exchange and queue it declares has a unique name and is deleted
// afterwards. See docs/benchmarks.md; run it with `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/outbox"
)

var discardLogger = slog.New(slog.DiscardHandler)

type options struct {
	url           string
	pg            string
	redis         string
	redisRate     float64
	relayLatencyN int
	rounds        int
	n             int
	nSlow         int
	latencyN      int
	scaleN        int
	scale         []int
	size          int
	window        int
	prefetch      int
	concurrency   int
	batch         int
	queues        []string
	only          *regexp.Regexp
	out           string
	root          string
	cpuprofile    string
	perf          string
	httpClients   int
	httpArray     int
	binEnv        []string
	rate          float64
	idle          time.Duration
	settle        time.Duration
	timeout       time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("efbench", flag.ContinueOnError)
	url := os.Getenv("AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	fs.StringVar(&o.url, "url", url, "broker URL (default: AMQP_URL, else the local broker)")
	pg := os.Getenv("TEST_DATABASE_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.IntVar(&o.relayLatencyN, "relay-latency-n", 2000, "rows for each relay latency measurement (committed at 200/s)")
	fs.StringVar(&o.pg, "pg", pg, "PostgreSQL for the relay rows, a user that may create databases (default: TEST_DATABASE_URL, else the local server)")
	redisURL := os.Getenv("TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	fs.StringVar(&o.redis, "redis", redisURL, "Redis for the relay's Redis sources (default: TEST_REDIS_URL, else the local server)")
	fs.Float64Var(&o.redisRate, "redis-rate", 5000, "bin-relay-redis: PUBLISH rate into the channel, messages/s")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every contender once, alternating")
	fs.IntVar(&o.n, "n", 20000, "messages per throughput measurement")
	fs.IntVar(&o.nSlow, "n-slow", 1000, "messages for the slow contenders (bare window 1, eventfleet 1 caller, watermill defaults)")
	fs.IntVar(&o.latencyN, "latency-n", 20000, "messages per latency measurement")
	fs.IntVar(&o.scaleN, "scale-n", 20000, "messages per scale-out measurement")
	scale := fs.String("scale", "1,2,4", "cmd/worker process counts for scale-out")
	fs.IntVar(&o.size, "size", 512, "message body size in bytes (JSON)")
	fs.IntVar(&o.window, "window", 256, "publish window: outstanding confirms, for the reference and eventfleet")
	fs.IntVar(&o.prefetch, "prefetch", 256, "consumer prefetch: reference, eventfleet worker, cmd/worker, tuned watermill")
	fs.IntVar(&o.concurrency, "concurrency", 16, "eventfleet worker concurrency")
	fs.IntVar(&o.batch, "batch", 1000, "events per PublishBatch call")
	queues := fs.String("queue", "quorum,classic", "queue types to run, comma-separated")
	only := fs.String("only", "", "run only contenders whose group/id matches this regexp (e.g. 'publish/|consume/ef')")
	fs.StringVar(&o.out, "out", "results/latest.json", "JSON results file")
	fs.StringVar(&o.root, "root", "..", "the eventfleet module's directory (binaries are built from it)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each in-process measurement to `PREFIX`.<contender>.<queue>.r<round>.pprof")
	fs.StringVar(&o.perf, "perf", "", "record each binary's CPU with perf(1) in the paths rows to `PREFIX`.<contender>.<queue>.r<round>.perf.data")
	fs.IntVar(&o.httpClients, "http-clients", 64, "paths: concurrent HTTP clients posting to publisher serve and the bare ingest, one keep-alive connection each")
	binEnv := fs.String("bin-env", "", "paths: extra KEY=VALUE settings, comma-separated, for the binaries (to measure a default changed; the rows are then not at their defaults)")
	fs.IntVar(&o.httpArray, "http-array", 100, "paths: events per request in the serve-array rows")
	fs.Float64Var(&o.rate, "rate", 0, "latency: offered msgs/s (0: half the reference's first-round end-to-end maximum for the queue type)")
	fs.DurationVar(&o.idle, "idle", time.Second, "cmd/worker: how long after \"consuming\" the idle RSS is read")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "before each measurement, wait up to this long for the machine to be quiet (0: don't)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on one measurement")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*scale, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return o, fmt.Errorf("-scale: bad process count %q", s)
		}
		o.scale = append(o.scale, k)
	}
	if *binEnv != "" {
		o.binEnv = strings.Split(*binEnv, ",")
	}
	for _, q := range strings.Split(*queues, ",") {
		q = strings.TrimSpace(q)
		if q != amqp.QueueQuorum && q != amqp.QueueClassic {
			return o, fmt.Errorf("-queue: %q is not quorum or classic", q)
		}
		o.queues = append(o.queues, q)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return o, fmt.Errorf("-only: %w", err)
		}
		o.only = re
	}
	switch {
	case o.rounds < 1, o.n < 1, o.nSlow < 1, o.latencyN < 1, o.scaleN < 1:
		return o, fmt.Errorf("rounds and message counts must be positive")
	case o.size < minBody:
		return o, fmt.Errorf("-size must be at least %d", minBody)
	case o.window < 1, o.prefetch < 1, o.concurrency < 1, o.batch < 1, o.httpClients < 1, o.httpArray < 1:
		return o, fmt.Errorf("-window, -prefetch, -concurrency, -batch, -http-clients and -http-array must be positive")
	}
	return o, nil
}

// bench is one run: options, the admin connection and the state of the
// contender being measured.
type bench struct {
	o    options
	adm  *admin
	run  string // unique prefix of every name this run declares
	tmp  string
	bins struct{ publisher, worker string }
	seq  int

	// current measurement, for names and profile files
	queue, id string
	round     int

	latencyRate map[string]float64 // by queue type
}

// name is a fresh broker name for this run.
func (b *bench) name(tag string) string {
	b.seq++
	return fmt.Sprintf("%s-%s-%s%d", b.run, tag, b.queue[:1], b.seq)
}

func (b *bench) cleanup(queues, exchanges []string) {
	if err := b.adm.cleanup(queues, exchanges); err != nil {
		fmt.Fprintln(os.Stderr, "efbench: cleanup:", err)
	}
}

// startTimer waits for a quiet machine, then starts timing; with
// -cpuprofile, in-process contenders are profiled too.
func (b *bench) startTimer() *timer {
	prof := ""
	if b.o.cpuprofile != "" && inProcess(b.id) {
		prof = fmt.Sprintf("%s.%s.%s.r%d.pprof", b.o.cpuprofile, pathFile(b.id), b.queue, b.round)
	}
	quiet := settle(b.o.settle)
	t := startTimer(prof)
	t.unsettled = !quiet
	return t
}

// pathFile is a contender key as part of a file name.
func pathFile(id string) string { return strings.ReplaceAll(id, "/", "-") }

// inProcess says whether a contender's client work runs in this process
// (so a CPU profile of it means something).
func inProcess(id string) bool { return !strings.Contains(id, "bin-") }

// contender is one thing being measured.
type contender struct {
	group, id, label string
	n                func(o options) int
	run              func(ctx context.Context, b *bench, n int) (measurement, error)
}

func (c contender) key() string { return c.group + "/" + c.id }

func contenders(o options) []contender {
	n := func(o options) int { return o.n }
	slow := func(o options) int { return o.nSlow }
	cs := []contender{
		{"publish", "bare", "bare amqp091-go, sliding confirm window", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBarePublish(ctx, n, b.o.window, 0)
			}},
		// 16 callers of Publish keep at most 16 messages in flight: the
		// reference with the same window is the bare loop with 16.
		{"publish", "bare-16", "bare amqp091-go, sliding confirm window 16", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBarePublish(ctx, n, 16, 0)
			}},
		// One caller of Publish has one message in flight: the ceiling for
		// it, and for any client that waits for each confirm.
		{"publish", "bare-1", "bare amqp091-go, confirm window 1", slow,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBarePublish(ctx, n, 1, 0) }},
		// A PublishBatch call returns when all its events are confirmed, so
		// the window empties at the end of every batch; the reference doing
		// the same work is the bare loop that waits at the same points.
		{"publish", "bare-batch", fmt.Sprintf("bare amqp091-go, sliding confirm window, all confirmed every %d", o.batch), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBarePublish(ctx, n, b.o.window, b.o.batch)
			}},
		{"publish", "ef-1", "eventfleet Publish, 1 caller", slow,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetPublish(ctx, n, 1)
			}},
		{"publish", "ef-16", "eventfleet Publish, 16 callers", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetPublish(ctx, n, 16)
			}},
		{"publish", "ef-256", "eventfleet Publish, 256 callers", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetPublish(ctx, n, 256)
			}},
		{"publish", "ef-batch", fmt.Sprintf("eventfleet PublishBatch, %d per batch", o.batch), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetBatch(ctx, n, b.o.batch)
			}},
		{"publish", "bin-publisher", "`publisher publish --file` (process start to exit)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runPublisherBinary(ctx, n) }},
		{"publish", "wm-default", "watermill-amqp, durable-queue preset + confirms, 1 goroutine", slow,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWatermillPublish(ctx, n, false)
			}},
		{"publish", "wm-tuned", "watermill-amqp tuned: 16 goroutines, 16 pooled channels, confirms", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWatermillPublish(ctx, n, true)
			}},
		{"consume", "bare", "bare amqp091-go, multiple-ack every 64", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareConsume(ctx, n) }},
		{"consume", "ef-worker", "eventfleet Worker, no-op handler, concurrency 16", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runEventfleetWorker(ctx, n) }},
	}
	if slices.Contains(o.scale, 1) {
		cs = append(cs, contender{"consume", "bin-worker", "`cmd/worker` HANDLER=log, 1 process (process start to empty queue)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runWorkerProcs(ctx, n, 1) }})
	}
	cs = append(cs,
		contender{"consume", "wm-default", "watermill-amqp, durable-queue preset (prefetch 1)", slow,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWatermillConsume(ctx, n, false)
			}},
		contender{"consume", "wm-tuned", "watermill-amqp tuned: prefetch 256", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWatermillConsume(ctx, n, true)
			}},
	)
	for _, k := range o.scale {
		if k == 1 {
			continue
		}
		cs = append(cs, contender{"scale-out", fmt.Sprintf("bin-worker-x%d", k), fmt.Sprintf("`cmd/worker` × %d processes", k),
			func(o options) int { return o.scaleN },
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runWorkerProcs(ctx, n, k) }})
	}
	// Each shipped binary path with its defaults, after its bare reference
	// (pathPair), in the same round.
	cs = append(cs,
		contender{"paths", "bare-serve-single", fmt.Sprintf("bare net/http + amqp091 ingest, %d clients, 1 event per POST", o.httpClients), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareServe(ctx, n, 1) }},
		contender{"paths", "bin-serve-single", fmt.Sprintf("`publisher serve`, %d clients, 1 event per POST", o.httpClients), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runServeBinary(ctx, n, 1) }},
		contender{"paths", "bare-serve-array", fmt.Sprintf("bare net/http + amqp091 ingest, %d clients, %d events per POST", o.httpClients, o.httpArray), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBareServe(ctx, n, b.o.httpArray)
			}},
		contender{"paths", "bin-serve-array", fmt.Sprintf("`publisher serve`, %d clients, %d events per POST", o.httpClients, o.httpArray), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runServeBinary(ctx, n, b.o.httpArray)
			}},
		contender{"paths", "bare-publish-file", "bare amqp091-go CLI: the same NDJSON file, each line decoded with encoding/json, sliding confirm window 256 (process start to exit)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareCLI(ctx, n) }},
		contender{"paths", "bin-publish-file", "`publisher publish --file`, defaults (process start to exit)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runPublisherBinaryDefaults(ctx, n)
			}},
		contender{"paths", "bare-worker-log", "bare consumer process writing the same JSON line to its stdout (a pipe), ack after the write", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareLog(ctx, n) }},
		contender{"paths", "bin-worker-log", "`cmd/worker` HANDLER=log, defaults (process start to empty queue)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWorkerBinary(ctx, n, "log")
			}},
		contender{"paths", "bare-relay", "bare amqp091-go, sliding confirm window 256 (the relay's reference: the publish limit)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBarePublish(ctx, n, b.o.window, 0)
			}},
		contender{"paths", "bin-relay", fmt.Sprintf("`publisher relay`, defaults: committed outbox rows of %d aggregates (process start to every row settled)", relayAggregates), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runRelayBinary(ctx, n) }},
		contender{"paths", "bin-relay-jetstream", "`publisher relay` RELAY_SOURCE=jetstream, defaults: a stream filled first (process start to every message acked)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runRelayJetStream(ctx, n) }},
		contender{"paths", "bin-relay-redis-stream", fmt.Sprintf("`publisher relay` RELAY_SOURCE=redis-stream, defaults: n entries XADDed first, bodies of %d aggregates (process start to every entry read and XACKed)", relayAggregates), n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runRelayRedisStream(ctx, n) }},
		contender{"paths", "bin-relay-redis", "`publisher relay` RELAY_SOURCE=redis, defaults: n messages PUBLISHed at -redis-rate once it is ready (first PUBLISH to the last message in the queue; at most once: see delivered_ratio)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runRelayRedisPubSub(ctx, n) }},
		contender{"paths", "bare-worker-webhook", "bare consumer POSTing each delivery to the same target, same concurrency", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareWebhook(ctx, n) }},
		contender{"paths", "bin-worker-webhook", "`cmd/worker` HANDLER=webhook, defaults (process start to empty queue)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWorkerBinary(ctx, n, "webhook")
			}},
		// Diagnostics for -cpuprofile: what cmd/worker builds, in process
		// (only when -only names them).
		contender{"paths", "ef-worker-log", "diagnostic: the worker HANDLER=log builds, in process (defaults)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWorkerInProcess(ctx, n, "log")
			}},
		contender{"paths", "ef-worker-webhook", "diagnostic: the worker HANDLER=webhook builds, in process (defaults)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runWorkerInProcess(ctx, n, "webhook")
			}},
		contender{"paths", "ef-relay", "diagnostic: the relay `publisher relay` builds, in process (defaults)", n,
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runRelayInProcess(ctx, n) }},
	)
	cs = append(cs,
		contender{"latency", "bare-max", "bare publisher → bare consumer, unpaced (end-to-end maximum)", func(o options) int { return o.latencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) { return b.runBareLatency(ctx, n, 0) }},
		contender{"latency", "ef-max", "eventfleet Publisher (256 callers) → Worker, unpaced", func(o options) int { return o.latencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetLatency(ctx, n, 0, false)
			}},
		contender{"latency", "bare", "bare publisher → bare consumer", func(o options) int { return o.latencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runBareLatency(ctx, n, b.latencyRate[b.queue])
			}},
		contender{"latency", "ef", "eventfleet Publisher → eventfleet Worker", func(o options) int { return o.latencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetLatency(ctx, n, b.latencyRate[b.queue], false)
			}},
		contender{"latency", "relay-notify", fmt.Sprintf("app commits an outbox row (%.0f/s) → `publisher relay` woken by the insert trigger → bare consumer", relayLatencyRate),
			func(o options) int { return o.relayLatencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runRelayLatency(ctx, n, true)
			}},
		contender{"latency", "relay-poll", fmt.Sprintf("the same without the trigger: the relay polls (OUTBOX_POLL_INTERVAL %v)", outbox.DefaultPollInterval),
			func(o options) int { return o.relayLatencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runRelayLatency(ctx, n, false)
			}},
		// Diagnostic: which side adds latency.
		contender{"latency", "bare-to-ef", "bare publisher → eventfleet Worker", func(o options) int { return o.latencyN },
			func(ctx context.Context, b *bench, n int) (measurement, error) {
				return b.runEventfleetLatency(ctx, n, b.latencyRate[b.queue], true)
			}},
	)
	if o.only == nil {
		// The in-process replicas of cmd/worker are for profiling; a full
		// run has the binaries themselves.
		return slices.DeleteFunc(cs, func(c contender) bool { return c.group == "paths" && strings.HasPrefix(c.id, "ef-") })
	}
	return slices.DeleteFunc(cs, func(c contender) bool { return !o.only.MatchString(c.key()) })
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case bareCLIArg:
			os.Exit(bareCLIMain(os.Args[2:]))
		case bareLogArg:
			os.Exit(bareLogMain(os.Args[2:]))
		}
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "efbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "efbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	o.root = root
	adm, err := newAdmin(o.url)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "efbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{
		o:           o,
		adm:         adm,
		run:         fmt.Sprintf("efbench-%s-%04x", time.Now().Format("150405"), rand.IntN(1<<16)),
		tmp:         tmp,
		latencyRate: map[string]float64{},
	}
	defer func() {
		if r := recover(); r != nil {
			_ = adm.close()
			panic(r)
		}
		if err := adm.close(); err != nil {
			fmt.Fprintln(os.Stderr, "efbench: cleanup:", err)
		}
	}()

	cs := contenders(o)
	if slices.ContainsFunc(cs, func(c contender) bool { return strings.HasPrefix(c.id, "bin-") || strings.HasPrefix(c.id, "relay-") }) {
		fmt.Fprintln(os.Stderr, "efbench: building cmd/publisher and cmd/worker")
		if err := b.buildBinaries(ctx); err != nil {
			return err
		}
	}
	rep := newReport(o, cs, adm.brokerVersion())
	began := time.Now()
	for round := 1; round <= o.rounds; round++ {
		for _, q := range o.queues {
			for _, c := range cs {
				if ctx.Err() != nil {
					break
				}
				b.queue, b.id, b.round = q, c.key(), round
				if c.group == "latency" && !strings.HasSuffix(c.id, "-max") && b.latencyRate[q] == 0 {
					b.latencyRate[q] = o.rate
					if o.rate == 0 {
						b.latencyRate[q] = rep.latencyRate(q)
					}
				}
				n := c.n(o)
				m, err := c.run(ctx, b, n)
				rep.add(q, c, round, n, m, err)
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "efbench: interrupted; reporting what was measured")
	}
	rep.Meta.Seconds = time.Since(began).Seconds()
	rep.finish()
	rep.print(os.Stdout)
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "efbench: wrote %s (%.0fs)\n", o.out, rep.Meta.Seconds)
	return ctx.Err()
}

// writeJSON writes v to path, creating the directory.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
