package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/deadletter"
	"github.com/eventfleet/eventfleet/internal/config"
)

// dlqFlags are every flag of "worker dlq"; each subcommand registers the ones
// it takes.
type dlqFlags struct {
	unrouted  bool
	output    string
	limit     int
	typ       string
	id        string
	olderThan string
	rate      string
	dryRun    bool
	yes       bool
}

// dlqCmd is one "worker dlq" subcommand.
type dlqCmd struct {
	name  string
	flags func(fs *flag.FlagSet, f *dlqFlags)
	run   func(ctx context.Context, in *deadletter.Inspector, f *dlqFlags, filter deadletter.Filter, stdout, stderr io.Writer) error
}

func filterFlags(fs *flag.FlagSet, f *dlqFlags) {
	fs.StringVar(&f.typ, "type", "", "only messages of this event type")
	fs.StringVar(&f.id, "id", "", "only the message with this id")
	fs.StringVar(&f.olderThan, "older-than", "", "only messages dead (or kept) longer than this, e.g. 30m, 7d")
}

var dlqCmds = []dlqCmd{
	{name: "list", run: dlqList, flags: func(fs *flag.FlagSet, f *dlqFlags) {
		fs.StringVar(&f.output, "o", "text", "output format: text or json")
	}},
	{name: "peek", run: dlqPeek, flags: func(fs *flag.FlagSet, f *dlqFlags) {
		fs.StringVar(&f.output, "o", "text", "output format: text or json")
		fs.IntVar(&f.limit, "limit", 10, "most messages shown; 0 for all")
		filterFlags(fs, f)
	}},
	{name: "replay", run: dlqReplay, flags: func(fs *flag.FlagSet, f *dlqFlags) {
		fs.IntVar(&f.limit, "limit", 0, "most messages replayed; 0 for all")
		fs.StringVar(&f.rate, "rate", "", "most messages per second, e.g. 50 or 50/s or 600/m")
		fs.BoolVar(&f.dryRun, "dry-run", false, "say what would be replayed; change nothing")
		filterFlags(fs, f)
	}},
	{name: "purge", run: dlqPurge, flags: func(fs *flag.FlagSet, f *dlqFlags) {
		fs.BoolVar(&f.yes, "yes", false, "really delete")
		filterFlags(fs, f)
	}},
}

// usageError is bad command-line input: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// runDLQ is "worker dlq [--unrouted] list|peek|replay|purge [flags]": look
// at, replay or delete the app's dead letters, or with --unrouted the
// exchange's unrouted events. Results go to stdout, errors to stderr.
func runDLQ(args []string, stdout, stderr io.Writer, environ map[string]string) int {
	code, err := dlq(args, stdout, stderr, environ)
	if err != nil {
		fmt.Fprintf(stderr, "worker dlq: %s\n", termSafe(err.Error()))
	}
	return code
}

func dlq(args []string, stdout, stderr io.Writer, environ map[string]string) (int, error) {
	var f dlqFlags
	top := flag.NewFlagSet("worker dlq", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	top.BoolVar(&f.unrouted, "unrouted", false, "work on the exchange's unrouted queue")
	if err := top.Parse(args); err != nil {
		return exitUsage, fmt.Errorf("%v (see worker -h)", err)
	}
	if top.NArg() == 0 {
		return exitUsage, errors.New("missing command: list, peek, replay or purge (see worker -h)")
	}
	name := top.Arg(0)
	i := slices.IndexFunc(dlqCmds, func(c dlqCmd) bool { return c.name == name })
	if i < 0 {
		return exitUsage, fmt.Errorf("unknown command %q: use list, peek, replay or purge (see worker -h)", name)
	}
	cmd := dlqCmds[i]
	fs := flag.NewFlagSet("worker dlq "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.unrouted, "unrouted", f.unrouted, "work on the exchange's unrouted queue")
	cmd.flags(fs, &f)
	if err := fs.Parse(top.Args()[1:]); err != nil {
		return exitUsage, fmt.Errorf("%s: %v (see worker -h)", name, err)
	}
	if fs.NArg() > 0 {
		return exitUsage, fmt.Errorf("%s: unexpected argument %q (flags go before arguments; see worker -h)", name, fs.Arg(0))
	}
	filter, err := f.check(name)
	if err != nil {
		return exitUsage, err
	}

	// The broker settings and the body limit only: a dead-letter tool must
	// work even when the worker's handler settings are broken.
	cfg, err := config.LoadInspect(environ)
	if err != nil {
		return exitUsage, err
	}
	// With the worker's body limit: a body it would not read is not loaded
	// here either (shown as withheld, kept by replay).
	conn, err := amqp.Dial(context.Background(), cfg.AMQPURL, "eventfleet-dlq-"+cfg.App(),
		amqp.WithMaxBody(cfg.MaxBody), amqp.WithTLS(cfg.TLS()))
	if err != nil {
		if cause := errors.Unwrap(err); cause != nil { // the URL once is enough
			err = cause
		}
		return exitFatal, fmt.Errorf("cannot connect to the broker at %s: %v", amqp.RedactURL(cfg.AMQPURL), err)
	}
	defer conn.Close()

	var in *deadletter.Inspector
	if f.unrouted {
		in = deadletter.ForUnrouted(conn, amqp.UnroutedQueue(cfg.Exchange), cfg.Exchange)
	} else {
		in = deadletter.ForApp(conn, amqp.AppQueue(cfg.App()))
	}
	// A signal stops the command between messages; what was not replayed
	// or purged yet stays in the queue.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if name == "replay" && !f.dryRun {
		pub, err := replayPublisher(cfg, stderr)
		if err != nil {
			return exitFatal, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = pub.Stop(sctx)
		}()
		in.Publisher = pub
	}
	err = cmd.run(ctx, in, &f, filter, stdout, stderr)
	switch {
	case err == nil:
		return exitOK, nil
	case errors.Is(err, deadletter.ErrNoQueue) && f.unrouted:
		return exitUsage, fmt.Errorf("no unrouted queue %s: has a publisher or worker with EXCHANGE=%s ever run on this broker? check EXCHANGE",
			in.Queue(), cfg.Exchange)
	case errors.Is(err, deadletter.ErrNoQueue):
		return exitUsage, fmt.Errorf("no dead-letter queue %s: has a worker of app %s ever run on this broker? check APP_NAME",
			in.Queue(), cfg.App())
	case errors.Is(err, deadletter.ErrInvalidOptions):
		return exitUsage, err
	case errors.Is(err, context.Canceled):
		return exitFatal, fmt.Errorf("interrupted; everything not yet replayed or purged is still in %s, in its order", in.Queue())
	default:
		return exitFatal, err
	}
}

// replayPublisher is the Publisher a replay sends its copies with, on a
// connection of its own. It logs only what goes wrong (to stderr: stdout is
// the command's output).
func replayPublisher(cfg config.Inspect, stderr io.Writer) (*amqp.Publisher, error) {
	// SendOnly: a replay keeps no unrouted copies (a returned copy stays
	// in the queue), so with TOPOLOGY=passive it checks only the domain
	// exchange, not the unrouted queue and exchange a worker never needs.
	pub, err := amqp.NewPublisher(amqp.PublisherConfig{URL: cfg.AMQPURL, TLS: cfg.TLS(), Exchange: cfg.Exchange, Topology: cfg.Topology,
		SendOnly:      true,
		Name:          "eventfleet-dlq-replay-" + cfg.App(),
		StopOnRefusal: true,
		Logger:        slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err == nil {
		err = pub.Start(context.Background())
	}
	if err != nil {
		return nil, fmt.Errorf("cannot publish to the broker at %s: %v", amqp.RedactURL(cfg.AMQPURL), err)
	}
	return pub, nil
}

// check validates the flags of command name and returns the filter they set.
func (f *dlqFlags) check(name string) (deadletter.Filter, error) {
	filter := deadletter.Filter{Type: f.typ, ID: f.id}
	if f.output != "" && f.output != "text" && f.output != "json" {
		return filter, usagef("%s: -o %q: use text or json", name, f.output)
	}
	if f.limit < 0 {
		return filter, usagef("%s: --limit %d: must be 0 (all) or more", name, f.limit)
	}
	if f.olderThan != "" {
		d, err := parseAge(f.olderThan)
		if err != nil {
			return filter, usagef("%s: --older-than %q: %v", name, f.olderThan, err)
		}
		filter.OlderThan = d
	}
	if f.rate != "" {
		if _, err := parseRate(f.rate); err != nil {
			return filter, usagef("%s: --rate %q: %v", name, f.rate, err)
		}
	}
	if name == "purge" && !f.yes {
		what := "every message"
		if !filter.IsZero() {
			what = "the selected messages"
		}
		return filter, usagef("purge deletes %s for good; add --yes to do it (look first with worker dlq peek)", what)
	}
	return filter, nil
}

// parseAge is a Go duration, or whole days such as "7d".
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, errors.New("use a duration such as 90m, 36h or 7d")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("use a duration such as 90m, 36h or 7d")
		}
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	return d, nil
}

// parseRate reads "N", "N/s" or "N/m" as messages per second.
func parseRate(s string) (float64, error) {
	per := 1.0
	switch {
	case strings.HasSuffix(s, "/s"):
		s = strings.TrimSuffix(s, "/s")
	case strings.HasSuffix(s, "/m"):
		s, per = strings.TrimSuffix(s, "/m"), 60
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > 1e6 {
		return 0, errors.New("use a positive number of messages per second, e.g. 50, 50/s or 600/m")
	}
	return n / per, nil
}

// count is n with "dead letter(s)" or "unrouted event(s)".
func count(f *dlqFlags, n int) string {
	what := "dead letter"
	if f.unrouted {
		what = "unrouted event"
	}
	if n != 1 {
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

// scanNote tells, on stderr, when an operation could not read every message.
func scanNote(stderr io.Writer, s deadletter.Scan) {
	if s.Incomplete {
		fmt.Fprintf(stderr, "worker dlq: note: read %d of the %d messages in %s (more than %d would have had to stay unacknowledged at once, "+
			"or the queue stopped delivering); the rest was not looked at\n", s.Scanned, s.Depth, s.Queue, deadletter.MaxScan)
	}
}

// timeString is t for JSON output, "" when unknown.
func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// timeText is t for people: to the second.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// listJSON is "list -o json".
type listJSON struct {
	Queue    string         `json:"queue"`
	Count    int            `json:"count"`
	Complete bool           `json:"complete"`
	ByType   map[string]int `json:"by_type"`
	ByReason map[string]int `json:"by_reason"`
	Oldest   string         `json:"oldest,omitempty"`
	Newest   string         `json:"newest,omitempty"`
	// Unreadable counts messages with headers the client could not read.
	Unreadable int `json:"unreadable_headers"`
}

func dlqList(ctx context.Context, in *deadletter.Inspector, f *dlqFlags, _ deadletter.Filter, stdout, stderr io.Writer) error {
	sum, err := in.List(ctx)
	if err != nil {
		return err
	}
	scanNote(stderr, sum.Scan)
	if f.output == "json" {
		out := listJSON{Queue: sum.Queue, Count: sum.Scanned, Complete: !sum.Incomplete, ByType: sum.ByType,
			ByReason: map[string]int{}, Oldest: timeString(sum.Oldest), Newest: timeString(sum.Newest), Unreadable: sum.Unreadable}
		for r, n := range sum.ByReason {
			out.ByReason[string(r)] = n
		}
		return writeJSON(stdout, out)
	}
	var b strings.Builder
	if sum.Scanned == 0 {
		fmt.Fprintf(&b, "%s: %s\n", sum.Queue, count(f, 0))
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	fmt.Fprintf(&b, "%s: %s\n", sum.Queue, count(f, sum.Scanned))
	if !sum.Oldest.IsZero() {
		fmt.Fprintf(&b, "  oldest  %s\n  newest  %s\n", timeText(sum.Oldest), timeText(sum.Newest))
	}
	b.WriteString("by type:\n")
	writeCounts(&b, sum.ByType)
	b.WriteString("by reason:\n")
	reasons := map[string]int{}
	for r, n := range sum.ByReason {
		reasons[string(r)] = n
	}
	writeCounts(&b, reasons)
	if sum.Unreadable > 0 {
		fmt.Fprintf(&b, "unreadable headers: %d (shown without them; peek names them)\n", sum.Unreadable)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// writeCounts writes counts, largest first, then by name (escaped by
// termSafe: event types come from messages).
func writeCounts(b *strings.Builder, counts map[string]int) {
	keys := make([]string, 0, len(counts))
	width := 0
	for k := range counts {
		keys = append(keys, k)
		width = max(width, len(termSafe(k)))
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		fmt.Fprintf(b, "  %-*s  %d\n", width, termSafe(k), counts[k])
	}
}

// messageJSON is one message of "peek -o json".
type messageJSON struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	RoutingKey   string `json:"routing_key"`
	Exchange     string `json:"exchange"`
	AggregateID  string `json:"aggregate_id,omitempty"`
	Source       string `json:"source,omitempty"`
	Reason       string `json:"reason"`
	App          string `json:"app,omitempty"`
	Attempts     int    `json:"attempts"`
	Replays      int    `json:"replays"`
	LastError    string `json:"last_error,omitempty"`
	Time         string `json:"time,omitempty"`
	FirstFailure string `json:"first_failure,omitempty"`
	Deliveries   int    `json:"deliveries"`
	ContentType  string `json:"content_type,omitempty"`
	// Unreadable names headers the client could not read (left out).
	Unreadable string `json:"unreadable_headers,omitempty"`
	// WithheldBody is the size of a body over WORKER_MAX_BODY, not read;
	// Body is null then.
	WithheldBody int64           `json:"withheld_body,omitempty"`
	Body         json.RawMessage `json:"body"`
}

func toJSON(m deadletter.Message) messageJSON {
	body := json.RawMessage(m.Body)
	if m.WithheldBody > 0 {
		body = json.RawMessage("null")
	} else if !json.Valid(m.Body) {
		// Not JSON (an undecodable event): the body as a string.
		body, _ = json.Marshal(strings.ToValidUTF8(string(m.Body), "\uFFFD"))
	}
	return messageJSON{ID: m.ID, Type: m.Type, RoutingKey: m.RoutingKey, Exchange: m.Exchange, AggregateID: m.AggregateID,
		Source: m.Source, Reason: string(m.Reason), App: m.App, Attempts: m.Attempts, Replays: m.Replays,
		LastError: m.LastError, Time: timeString(m.Time), FirstFailure: timeString(m.FirstFailure),
		Deliveries: m.Deliveries, ContentType: m.ContentType, Unreadable: m.Unreadable, WithheldBody: m.WithheldBody, Body: body}
}

func dlqPeek(ctx context.Context, in *deadletter.Inspector, f *dlqFlags, filter deadletter.Filter, stdout, stderr io.Writer) error {
	res, err := in.Peek(ctx, deadletter.PeekOptions{Filter: filter, Limit: f.limit})
	if err != nil {
		return err
	}
	scanNote(stderr, res.Scan)
	if f.output == "json" {
		out := make([]messageJSON, 0, len(res.Messages))
		for _, m := range res.Messages {
			out = append(out, toJSON(m))
		}
		return writeJSON(stdout, out)
	}
	var b strings.Builder
	selected := ""
	if !filter.IsZero() {
		selected = " selected"
	}
	fmt.Fprintf(&b, "%s: %d%s of %s, head of the queue first\n", res.Queue, len(res.Messages), selected, count(f, res.Depth))
	for _, m := range res.Messages {
		b.WriteString("\n")
		writeMessageText(&b, m)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// writeMessageText writes m as "peek" shows it, one field a line. Every
// value comes from the message: escaped, so that none can move the cursor
// or start a line of its own.
func writeMessageText(b *strings.Builder, m deadletter.Message) {
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(b, "  %-12s %s\n", name+":", termSafe(value))
		}
	}
	field("id", m.ID)
	field("type", m.Type)
	if m.RoutingKey != m.Type {
		field("routing key", m.RoutingKey)
	}
	field("aggregate", m.AggregateID)
	field("source", m.Source)
	field("reason", string(m.Reason))
	field("attempts", strconv.Itoa(m.Attempts))
	if m.Replays > 0 {
		field("replays", strconv.Itoa(m.Replays))
	}
	field("time", timeText(m.Time))
	field("last error", oneLine(m.LastError, 300))
	field("unreadable", m.Unreadable)
	if m.WithheldBody > 0 {
		field("body", fmt.Sprintf("(not read: %d bytes, over WORKER_MAX_BODY)", m.WithheldBody))
		return
	}
	field("body", oneLine(bodyText(m.Body), 500))
}

func bodyText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("(%d bytes, not UTF-8)", len(b))
}

// oneLine shortens s to at most n bytes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

func dlqReplay(ctx context.Context, in *deadletter.Inspector, f *dlqFlags, filter deadletter.Filter, stdout, stderr io.Writer) error {
	var rate float64 // 0: as fast as the broker confirms
	if f.rate != "" {
		rate, _ = parseRate(f.rate) // checked by dlqFlags.check
	}
	res, err := in.Replay(ctx, deadletter.ReplayOptions{Filter: filter, Limit: f.limit, Rate: rate, DryRun: f.dryRun,
		OnMessage: func(r deadletter.ReplayedMessage) {
			line := fmt.Sprintf("%s  %s  %s", r.Outcome, r.Message.ID, r.Message.Type)
			if r.Err != nil {
				line += ": " + r.Err.Error()
			}
			fmt.Fprintln(stdout, termSafe(line))
		}})
	if notStarted(err) {
		return err
	}
	switch {
	case f.dryRun:
		fmt.Fprintf(stdout, "dry run: would replay %s from %s to %s; nothing was changed\n", count(f, res.Replayed), res.Queue, res.Target)
	default:
		fmt.Fprintf(stdout, "replayed %s from %s to %s", count(f, res.Replayed), res.Queue, res.Target)
		if res.Kept > 0 {
			fmt.Fprintf(stdout, "; %d kept in %s", res.Kept, res.Queue)
		}
		fmt.Fprintln(stdout)
	}
	scanNote(stderr, res.Scan)
	return err
}

// notStarted reports errors that stopped an operation before it read the
// queue, so there is nothing to summarize.
func notStarted(err error) bool {
	return errors.Is(err, deadletter.ErrNoQueue) || errors.Is(err, deadletter.ErrBusy) || errors.Is(err, deadletter.ErrInvalidOptions)
}

func dlqPurge(ctx context.Context, in *deadletter.Inspector, f *dlqFlags, filter deadletter.Filter, stdout, stderr io.Writer) error {
	res, err := in.Purge(ctx, deadletter.PurgeOptions{Filter: filter, OnPurge: func(m deadletter.Message) {
		fmt.Fprintf(stdout, "purged  %s  %s\n", termSafe(m.ID), termSafe(m.Type))
	}})
	if !notStarted(err) {
		fmt.Fprintf(stdout, "purged %s from %s\n", count(f, res.Purged), res.Queue)
	}
	scanNote(stderr, res.Scan)
	return err
}

func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeJSONControls(buf.Bytes()))
	return err
}

// escapeJSONControls writes DEL and the C1 controls (U+0080–U+009F) of
// encoded JSON as \u escapes: encoding/json escapes C0 controls and invalid
// UTF-8 but leaves these raw, and some terminals act on them. They can only
// occur inside strings, where the escape means the same.
func escapeJSONControls(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for _, r := range string(b) {
		if r >= 0x7f && r <= 0x9f {
			out = fmt.Appendf(out, `\u%04x`, r)
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}
