package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/admin"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisbridge"
	"github.com/eventfleet/eventfleet/tracing"
)

const usage = `Usage:
  publisher publish [--file FILE] [--failed FILE]
                                   publish newline-delimited JSON events from FILE (default stdin);
                                   --failed writes the events not confirmed there, to send again
  publisher serve                  accept events over HTTP: POST /events, GET /healthz, GET /readyz;
                                   GET /metrics, /healthz, /readyz on METRICS_ADDR
  publisher key new CALLER [--types T,…]
                                   print a new API key for CALLER and the PUBLISHER_KEYS line that
                                   lets serve accept it; --types limits it to those event types
                                   (topic binding keys, as EVENT_TYPES; default any)
  publisher relay                  publish the committed rows of the app's outbox table (DATABASE_URL,
                                   OUTBOX_*): one relay per table publishes, others stand by; with
                                   RELAY_SOURCE=redis or redis-stream, the messages of Redis (REDIS_*);
                                   nats or jetstream, those of NATS (NATS_*)
  publisher relay migrate          create the outbox table and its trigger (OUTBOX_FORMAT=eventfleet),
                                   or only the side table for set-aside rows (event_store)
  publisher relay set-aside list   print the rows set aside (NDJSON: row, aggregate_id, reason, attempts)
  publisher relay set-aside retry ROW…|--all
                                   let the relay try those rows again (their aggregates' later rows follow)
  publisher relay set-aside discard ROW…|--all
                                   settle those rows without publishing them, and release their aggregates
  publisher health                 exit 0 if this APP_NAME's publisher serve is ready (asked on
                                   METRICS_ADDR, its recorded address when unset, or PUBLISHER_ADDR
                                   when METRICS_ADDR=off), else 1: a container health check; where
                                   no serve runs but this APP_NAME's relay does, it asks the relay
  publisher -h | --help            show this help

An event is one JSON object:
  {"type": "CardAddedToLibraryEvent", "aggregate_id": "lib-1", "id": "optional", "data": {...}}

Environment:
  AMQP_URL            broker URL, or several separated by commas (cluster nodes); holds the password (default amqp://guest:guest@localhost:5672/)
  AMQP_TLS_CA_FILE    amqps: PEM file of the CAs the broker's certificate must chain to (over ?cacertfile)
  AMQP_TLS_CERT_FILE  amqps: client certificate (PEM), with AMQP_TLS_KEY_FILE (over ?certfile)
  AMQP_TLS_KEY_FILE   amqps: the client certificate's private key (PEM) (over ?keyfile)
  AMQP_TLS_SERVER_NAME amqps: name the broker's certificate must carry (default the URL's host)
  EXCHANGE            domain exchange (default domain_events)
  TOPOLOGY            declare the exchange and <EXCHANGE>.unrouted, or passive: only check
                      them, for a user without configure permission (default declare)
  QUORUM_INITIAL_GROUP_SIZE  replicas of <EXCHANGE>.unrouted when it is created (default 0:
                      the broker's, 3 or every node of a smaller cluster)
  APP_NAME            app_id of the messages (else FLY_APP_NAME, else "app")
  LOG_LEVEL           debug, info, warn or error (default info)
  PUBLISH_WINDOW      events in flight awaiting confirms (default 256)
  PUBLISH_TIMEOUT     serve: confirm deadline per request (default 10s); publish: give up after
                      this long without any confirm while events wait (default 1m)
  PUBLISH_DEADLINE    publish: give up after this long in all (default 0: no bound)
  PUBLISHER_ADDR      serve: listen address (default :8080)
  PUBLISHER_MAX_BODY  serve: largest POST /events body in bytes (default 1048576)
  PUBLISHER_AUTH      serve: keys (callers send Authorization: Bearer <key>) or none (anyone
                      may publish: a local demo only) (default keys)
  PUBLISHER_KEYS      serve: API key lines "CALLER SHA256-OF-KEY [TYPE,…]", separated by
                      newlines or ";" (a secret); make one with publisher key new
  PUBLISHER_KEYS_FILE serve: a file of such lines, instead of PUBLISHER_KEYS
  PUBLISHER_MAX_EVENTS  serve: most events in one request (default 500)
  PUBLISHER_MAX_IN_FLIGHT  serve: most events awaiting confirms across all requests; beyond,
                      429 (default 10000)
  PUBLISHER_RATE      serve: events per second per caller, a token bucket (default 0: no limit)
  PUBLISHER_MAX_DEPTH serve: deepest JSON nesting of a request (default 64)
  DATABASE_URL        relay: the app's PostgreSQL (URL or key=value DSN), holds the password
  OUTBOX_TABLE        relay: outbox table (default eventfleet_outbox; event_store for that format)
  OUTBOX_FORMAT       relay: eventfleet (this relay's table) or event_store (the original design's
                      table, unchanged) (default eventfleet)
  OUTBOX_BATCH        relay: rows per scan (default 2000)
  OUTBOX_POLL_INTERVAL  relay: scan at least this often without a notification (default 1s)
  OUTBOX_TAKEOVER     relay: how often a standby relay tries to take over (default 1s)
  OUTBOX_MAX_ATTEMPTS relay: broker refusals before a row is set aside (default 10)
  OUTBOX_RETENTION    relay, event_store: prune processed rows older than this; 0 keeps them
                      (default 168h)
  RELAY_SOURCE        relay: postgres (the outbox table), redis (pub/sub: at most once),
                      redis-stream (a stream's consumer group: at least once), nats (core NATS:
                      at most once) or jetstream (a durable consumer: at least once)
                      (default postgres)
  REDIS_URL           relay, redis*: redis:// or rediss:// (TLS), may hold the password
                      (default redis://127.0.0.1:6379/0)
  REDIS_CHANNEL_PATTERN  relay, redis: PSUBSCRIBE pattern; the event type is what its * matched
                      (default events:*)
  REDIS_STREAM        relay, redis-stream: the stream (at most 213 bytes), entries with fields
                      type and event; the rejected ones go to <stream>:rejected (default events)
  REDIS_GROUP         relay, redis-stream: consumer group, created from the stream's start
                      (default eventfleet-relay)
  REDIS_CONSUMER      relay, redis-stream: this relay's name in the group (default FLY_MACHINE_ID,
                      else the hostname)
  REDIS_CLAIM_IDLE    relay, redis-stream: entries pending this long at a dead consumer are
                      claimed and published again; at least 1s (default 30s)
  NATS_URL            relay, nats/jetstream: the server(s), may hold credentials
                      (default nats://127.0.0.1:4222)
  NATS_CREDS_FILE     relay, nats/jetstream: a .creds file instead of credentials in NATS_URL
  NATS_SUBJECT        relay, nats/jetstream: subject pattern; the event type is the subject
                      without the pattern's literal prefix (default events.*)
  NATS_STREAM         relay, jetstream: the stream, created only if missing at start; deleted
                      later, it stops the relay (default EVENTS)
  NATS_CONSUMER       relay, jetstream: the durable consumer (default eventfleet-relay)
  NATS_ACK_WAIT       relay, jetstream: redelivery after this without an ack; must exceed
                      PUBLISH_TIMEOUT (default 30s)
  SHUTDOWN_TIMEOUT    serve: drain time after SIGTERM/SIGINT (default 25s)
  METRICS_ADDR        serve: where /metrics, /healthz, /readyz are served, or off (default :9090;
                      unset and :9090 taken: a free port, logged at WARN); the same as
                      PUBLISHER_ADDR shares that port (it is often public)
  OTEL_TRACES_EXPORTER  otlp exports spans over OTLP/HTTP, none nothing (default none);
                      a traceparent sent to POST /events is continued either way
  OTEL_EXPORTER_OTLP_PROTOCOL  only http/protobuf is built in
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL  the same, for traces only
  OTEL_SDK_DISABLED   true exports nothing whatever else says (default false)
  (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME (default eventfleet-publisher) and the
  other standard OTEL_* variables are read by the OpenTelemetry SDK.)

Exit codes: 0 success, 1 events failed or runtime error, 2 usage or configuration error.
`

// errUsage means the command line was wrong; the usage was already printed.
var errUsage = errors.New("usage error")

// errBadArgs is an argument the command refused after parsing; unlike
// errUsage, its message is still to be printed.
var errBadArgs = errors.New("invalid argument")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a second
	// Ctrl-C kills a drain that takes too long.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], config.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run parses the command line and the environment, builds the publisher and
// hands over to the subcommand.
func run(ctx context.Context, args []string, environ map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, err := parseArgs(args, stdout, stderr)
	if err != nil || cmd.name == "" {
		return err
	}
	switch cmd.name {
	case "health":
		return health(ctx, environ, stdout)
	case "key":
		return keyNew(cmd.caller, cmd.types, stdout)
	case "relay":
		return relayCommand(ctx, cmd, environ, stdout, stderr)
	}
	cfg, err := config.LoadPublisher(environ)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	m := metrics.New()
	pcfg := cfg.PublisherConfig(log, m)
	if cmd.name == "publish" {
		pcfg.Backoff = publishBackoff
		// A wrong password or certificate will not fix itself within a
		// run: say so at once rather than after PUBLISH_TIMEOUT.
		pcfg.StopOnRefusal = true
	}
	p, err := amqp.NewPublisher(pcfg)
	if err != nil {
		return err
	}
	flushTraces, err := tracing.Setup(ctx, cfg.Tracing("eventfleet-publisher"))
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := flushTraces(fctx); err != nil {
			log.Warn("could not export the last spans", "err", err)
		}
	}()
	if cmd.name == "publish" {
		return publish(ctx, cfg, p, cmd.file, cmd.failed, stdin, stdout, stderr)
	}
	if err := cfg.LoadKeys(); err != nil {
		return err
	}
	return serve(ctx, cfg, p, m, log)
}

// health is "publisher health": ask the running server's /readyz (or the
// relay's, in a relay's container), for container health checks in an image
// that has no curl.
func health(ctx context.Context, environ map[string]string, stdout io.Writer) error {
	t, err := config.LoadTelemetry(environ)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if t.MetricsAddr == config.MetricsOff {
		// /readyz is on PUBLISHER_ADDR, which has no fallback.
		addr := environ["PUBLISHER_ADDR"]
		if addr == "" {
			addr = config.DefaultPublisherAddr
		}
		if _, err := admin.Probe(pctx, addr); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "ready")
		return nil
	}
	target := admin.Target{Role: admin.RolePublisher, App: config.App(environ), Addr: t.MetricsAddr, Default: t.MetricsAddr}
	if t.MetricsAddrDefault {
		target.Addr = "" // ask the recorded address of this app's publisher
	}
	lines, err := admin.Check(pctx, target)
	if err != nil {
		// A relay's container runs `publisher health` too: where no serve
		// is ready, this app's relay may be. Its answer counts when it is
		// ready, or when the relay is what answered in the serve's place;
		// otherwise the serve's error stands, naming what answered if
		// anything did.
		target.Role = admin.RoleRelay
		rl, rerr := admin.Check(pctx, target)
		if rerr == nil || errors.Is(err, admin.ErrOtherProcess) && !errors.Is(rerr, admin.ErrOtherProcess) {
			lines, err = rl, rerr
		}
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return err
}

// command is a parsed command line; an empty name means help was shown.
type command struct {
	name   string
	file   string   // publish --file
	failed string   // publish --failed
	sub    string   // relay migrate | set-aside list|retry|discard
	rows   []string // relay set-aside retry|discard ROW…
	all    bool     // relay set-aside retry|discard --all
	caller string   // key new CALLER
	types  string   // key new --types
}

func parseArgs(args []string, stdout, stderr io.Writer) (command, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return command{}, errUsage
	}
	cmd := command{name: args[0]}
	fs := flag.NewFlagSet("publisher "+cmd.name, flag.ContinueOnError)
	switch cmd.name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return command{}, nil
	case "publish":
		fs.StringVar(&cmd.file, "file", "", "read events from `FILE` instead of stdin (\"-\" is stdin)")
		fs.StringVar(&cmd.failed, "failed", "", "write the events not confirmed to `FILE`, as NDJSON with their ids, to send again with --file")
	case "key":
		if len(args) < 2 || args[1] != "new" {
			fmt.Fprintf(stderr, "publisher key: use `publisher key new CALLER [--types T,…]`\n\n%s", usage)
			return command{}, errUsage
		}
		args = args[1:]
		fs.StringVar(&cmd.types, "types", "", "comma-separated event `TYPES` (topic binding keys) the key may publish; default any")
	case "relay":
		switch {
		case len(args) > 1 && args[1] == "migrate":
			cmd.sub = "migrate"
			args = args[1:]
		case len(args) > 1 && args[1] == "set-aside":
			if len(args) < 3 || !slices.Contains([]string{"list", "retry", "discard"}, args[2]) {
				fmt.Fprintf(stderr, "publisher relay set-aside: use list, retry ROW…|--all or discard ROW…|--all\n\n%s", usage)
				return command{}, errUsage
			}
			cmd.sub = "set-aside " + args[2]
			args = args[2:]
			if args[0] != "list" {
				fs.BoolVar(&cmd.all, "all", false, "every set-aside row")
			}
		}
	case "serve", "health":
	default:
		fmt.Fprintf(stderr, "publisher: unknown command %q\n\n%s", cmd.name, usage)
		return command{}, errUsage
	}
	// Parse quietly, then print: help goes to stdout, mistakes to stderr.
	fs.SetOutput(io.Discard)
	pos, err := parseInterspersed(fs, args[1:])
	switch {
	case err != nil:
	case strings.HasPrefix(cmd.sub, "set-aside ") && cmd.sub != "set-aside list":
		cmd.rows = pos
		if (len(pos) > 0) == cmd.all {
			err = errors.New("name the rows (as set-aside list prints them) or --all, not both")
		}
	case cmd.name == "key" && len(pos) == 1:
		cmd.caller = pos[0]
	case cmd.name == "key" && len(pos) == 0:
		err = errors.New("missing CALLER: the name the key's events are published under")
	case cmd.name == "key":
		err = fmt.Errorf("unexpected argument %q", pos[1])
	case len(pos) > 0:
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		printFlags(stdout, fs)
		return command{}, nil
	case err != nil:
		fmt.Fprintf(stderr, "publisher %s: %v\n", cmd.name, err)
		printFlags(stderr, fs)
		return command{}, errUsage
	}
	if cmd.file == "-" {
		cmd.file = ""
	}
	return cmd, nil
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments (`key new CALLER --types T`), which flag.Parse alone does not.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\n%s", usage)
}

// exitCode prints err (unless the usage already said it) and maps it to the
// exit code: 2 for what the operator must fix before a retry can help.
func exitCode(err error, stderr io.Writer) int {
	var cfgErr *config.Error
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &cfgErr), errors.Is(err, config.ErrNoKeys), errors.Is(err, errBadArgs),
		errors.Is(err, amqp.ErrInvalidConfig), errors.Is(err, ingest.ErrInvalidConfig), errors.Is(err, redisbridge.ErrInvalidConfig):
		fmt.Fprintln(stderr, "publisher:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "publisher:", err)
		return 1
	}
}
