package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/eventfleet/eventfleet/internal/config"
)

// Exit codes (see the package documentation).
const (
	exitOK    = 0
	exitFatal = 1
	exitUsage = 2
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr, config.Environ()))
}

// command is a subcommand. run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer, environ map[string]string) int
}

// commands are worker's subcommands; the first is the default. Later ones
// (worker dlq list|replay|purge, for the dead-letter queue) are added here.
var commands = []command{
	{name: "run", summary: "consume the app's queue and hand each event to the handler (the default)", run: runWorker},
	{name: "dlq", summary: "list, peek at, replay or purge the app's dead letters or the unrouted events (below)", run: runDLQ},
	{name: "health", summary: "exit 0 if this app's worker (every one on this host) is consuming, else 1 (a container health check)", run: runHealth},
}

// dispatch picks the subcommand and returns the exit code.
func dispatch(args []string, stdout, stderr io.Writer, environ map[string]string) int {
	if len(args) == 0 {
		args = []string{commands[0].name}
	}
	if isHelp(args[0]) {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		if slices.ContainsFunc(args[1:], isHelp) {
			usage(stdout)
			return exitOK
		}
		return c.run(args[1:], stdout, stderr, environ)
	}
	fmt.Fprintf(stderr, "worker: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: worker [command]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString(dlqHelp)
	b.WriteString(envHelp)
	_, _ = io.WriteString(w, b.String())
}

// dlqHelp is the usage of "worker dlq".
const dlqHelp = `
Dead letters: worker dlq [--unrouted] COMMAND [flags]
  list [-o json]          count events_<APP_NAME>.dead by event type and by reason,
                          with the oldest and newest time
  peek [--limit N] [FILTERS] [-o json]
                          show messages (default 10, 0 for all), head first: id, type,
                          aggregate, reason, attempts, last error, time, body
  replay [--limit N] [FILTERS] [--rate R/s] [--dry-run]
                          send them back to events_<APP_NAME> only, as attempt 1, then
                          remove them; a copy is confirmed before the original goes
  purge [FILTERS] --yes   delete them (refused without --yes)
  FILTERS                 --type T  --id ID  --older-than D (e.g. 90m, 36h, 7d)
  --unrouted              the same for <EXCHANGE>.unrouted; replay publishes each event
                          to EXCHANGE again with its original routing key, and keeps it
                          in the queue if it is still unroutable
  Reading leaves every message in place and in order, but raises its delivery count.
  Exit codes: 0 done, 1 failed (broker unreachable, messages kept back, interrupted),
  2 bad usage or settings, or no such queue (check APP_NAME or EXCHANGE).
`

// envHelp lists the settings; a test checks that it names every variable
// config.Worker reads.
const envHelp = `
Settings come from the environment (defaults in brackets):

Broker
  AMQP_URL            broker URL, or several separated by commas (cluster nodes); holds the password, keep it secret
                      [amqp://guest:guest@localhost:5672/]
  AMQP_TLS_CA_FILE    amqps: PEM file of the CAs the broker's certificate must
                      chain to (wins over ?cacertfile) [the system's CAs]
  AMQP_TLS_CERT_FILE  amqps: client certificate (PEM), with AMQP_TLS_KEY_FILE
                      (wins over ?certfile and ?keyfile) [none]
  AMQP_TLS_KEY_FILE   amqps: the client certificate's private key (PEM)
  AMQP_TLS_SERVER_NAME amqps: name the broker's certificate must carry
                      (wins over ?server_name_indication) [the URL's host]
  EXCHANGE            domain exchange [domain_events]
  TOPOLOGY            declare the domain exchange, or passive: only check it,
                      for a broker user without configure permission on it
                      (docs/least-privilege.md) [declare]
  APP_NAME            this app's name; its queue is events_<APP_NAME>
  FLY_APP_NAME        used when APP_NAME is empty [app when both are]
  LOG_LEVEL           debug, info, warn or error [info]

Consuming
  EVENT_TYPES         comma-separated event types to bind; "*" and "#" match
                      whole dot-separated words only [all events]
  QUEUE_TYPE          quorum or classic [quorum]
  WORKER_CONCURRENCY  handlers running at once [16]
  WORKER_PREFETCH     deliveries the broker sends ahead [64]
  WORKER_MAX_BODY     largest body in bytes; larger ones are dead-lettered [16777216]
  HANDLER_TIMEOUT     bound on one handler call; a timeout is retried [30s]
  RETRY_DELAYS        waits before attempts 2, 3, …; the last repeats [1s,10s,1m,5m]
  RETRY_MAX_ATTEMPTS  attempts before an event is dead-lettered [5]
  DELIVERY_LIMIT      redeliveries of an unacked event (a crashing worker)
                      before the broker dead-letters it (quorum only) [20]
  QUORUM_INITIAL_GROUP_SIZE  replicas of each quorum queue when it is created;
                      0: the broker's default, 3 or every node of a smaller
                      cluster; existing queues keep theirs [0]
  SHUTDOWN_TIMEOUT    on SIGTERM/SIGINT, how long running handlers may finish;
                      after it, their events go back to the queue [25s]

Metrics, health and tracing
  METRICS_ADDR        where /metrics, /healthz and /readyz are served, or off [:9090];
                      unset and :9090 taken: a free port, logged at WARN; worker
                      health then finds it (recorded in $XDG_RUNTIME_DIR or $TMPDIR)
  OTEL_TRACES_EXPORTER  otlp exports spans over OTLP/HTTP; none exports
                      nothing [none]; trace context is passed on (AMQP
                      headers, webhook requests) either way
  OTEL_EXPORTER_OTLP_PROTOCOL  only http/protobuf is built in [http/protobuf]
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL  the same, for traces only
  OTEL_SDK_DISABLED   true exports nothing whatever else says [false]
  (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME [eventfleet-worker],
  OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and the other standard OTEL_*
  variables are read by the OpenTelemetry SDK.)

Handler
  HANDLER             log (a JSON line per event on stdout), webhook (POST to
                      WEBHOOK_URL) or redis (PUBLISH to REDIS_CHANNEL) [log]
  WEBHOOK_URL         http(s) URL events are POSTed to; required for webhook
  WEBHOOK_TIMEOUT     bound on one webhook request; a timeout is retried [10s]
  WEBHOOK_SECRET      whsec_<base64> secrets, space-separated (rotation), that
                      sign each request (Standard Webhooks); unset: unsigned, WARN
  REDIS_URL           redis: redis://[:password@]host:port/db, rediss:// for TLS;
                      may hold the password, never shown [redis://127.0.0.1:6379/0]
  REDIS_CHANNEL       redis: the channel; {type} becomes the event type; the body
                      is the event's data as published [events:{type}]
  REDIS_TIMEOUT       redis: bound on one PUBLISH; a failure or timeout is retried,
                      and subscribers get events at most once [5s]

Logs are JSON on stderr. Exit codes: 0 stopped by a signal, 1 fatal broker
error (such as a queue declared with other arguments), 2 bad usage or settings.
A second SIGTERM/SIGINT during shutdown ends the worker at once.
`
