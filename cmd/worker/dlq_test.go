package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// dlqResult is one finished "worker dlq" process.
type dlqResult struct {
	code           int
	stdout, stderr string
}

// dlqRun runs "worker dlq args…" with env to its end.
func dlqRun(t *testing.T, env map[string]string, args ...string) dlqResult {
	t.Helper()
	env = maps.Clone(env)
	// A -race binary sleeps 1s at exit by default; these are many short runs.
	env["GORACE"] = "atexit_sleep_ms=0"
	p := startWorker(t, env, append([]string{"dlq"}, args...)...)
	code := p.wait(60 * time.Second)
	return dlqResult{code: code, stdout: p.Stdout.String(), stderr: p.Stderr.String()}
}

func (r dlqResult) expect(t *testing.T, code int, stdout ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, want := range stdout {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
		}
	}
}

// TestDLQ_Usage covers what "worker dlq" refuses before it reaches a broker.
func TestDLQ_Usage(t *testing.T) {
	t.Parallel()
	const password = "s3cr3tpw"
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStderr []string
		notStderr  []string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: []string{"missing command: list, peek, replay or purge"}},
		{name: "unknown command", args: []string{"frob"}, wantCode: 2, wantStderr: []string{`unknown command "frob"`}},
		{name: "purge without --yes", args: []string{"purge"}, wantCode: 2,
			wantStderr: []string{"purge deletes every message for good; add --yes"}},
		{name: "filtered purge without --yes", args: []string{"purge", "--type", "AEvent"}, wantCode: 2,
			wantStderr: []string{"purge deletes the selected messages for good; add --yes"}},
		{name: "bad output", args: []string{"peek", "-o", "xml"}, wantCode: 2, wantStderr: []string{`-o "xml": use text or json`}},
		{name: "bad rate", args: []string{"replay", "--rate", "fast"}, wantCode: 2, wantStderr: []string{`--rate "fast"`}},
		{name: "bad age", args: []string{"purge", "--older-than", "soon", "--yes"}, wantCode: 2, wantStderr: []string{`--older-than "soon"`, "7d"}},
		{name: "negative limit", args: []string{"peek", "--limit", "-1"}, wantCode: 2, wantStderr: []string{"--limit -1"}},
		{name: "flag of another command", args: []string{"list", "--limit", "3"}, wantCode: 2,
			wantStderr: []string{"list: flag provided but not defined: -limit"}},
		{name: "argument", args: []string{"list", "now"}, wantCode: 2, wantStderr: []string{`unexpected argument "now"`}},
		{name: "bad app name", args: []string{"list"}, env: []string{"APP_NAME=no spaces"}, wantCode: 2,
			wantStderr: []string{"APP_NAME"}},
		{name: "broker unreachable", args: []string{"list"}, wantCode: 1,
			wantStderr: []string{"cannot connect to the broker at amqp://guest:xxxxx@127.0.0.1:1/"}, notStderr: []string{password}},
		{name: "unrouted, broker unreachable", args: []string{"--unrouted", "peek", "--limit", "3"}, wantCode: 1,
			wantStderr: []string{"cannot connect to the broker"}, notStderr: []string{password}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AMQP_URL": "amqp://guest:" + password + "@127.0.0.1:1/", "APP_NAME": "dlq-cli-test"}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			r := dlqRun(t, env, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
				}
			}
			for _, bad := range tt.notStderr {
				if strings.Contains(r.stderr, bad) {
					t.Errorf("stderr leaks %q:\n%s", bad, r.stderr)
				}
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		r := dlqRun(t, map[string]string{}, "peek", "-h")
		r.expect(t, 0, "worker dlq [--unrouted] COMMAND", "--older-than", "--dry-run", "--yes")
	})
}

func TestDLQ_NoQueue(t *testing.T) {
	t.Parallel()
	a := newApp(t) // never run: its queues do not exist
	r := dlqRun(t, a.env(t), "list")
	r.expect(t, 2)
	if want := fmt.Sprintf("no dead-letter queue %s: has a worker of app %s ever run on this broker? check APP_NAME", a.dead, a.name); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	r = dlqRun(t, a.env(t), "--unrouted", "replay")
	r.expect(t, 2)
	if want := fmt.Sprintf("no unrouted queue %s.unrouted: has a publisher or worker with EXCHANGE=%s ever run", a.exchange, a.exchange); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

// TestDLQ_WorkedExample is the README's example: a poison event dies, list
// and peek show it, the handler is fixed, replay brings it back once as
// attempt 1.
func TestDLQ_WorkedExample(t *testing.T) {
	t.Parallel()
	a := newApp(t, 50*time.Millisecond)
	var fixed atomic.Bool
	var mu sync.Mutex
	calls := map[string][]string{} // event id → X-Event-Attempt of each call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Event-Id")
		mu.Lock()
		calls[id] = append(calls[id], r.Header.Get("X-Event-Attempt"))
		mu.Unlock()
		if r.Header.Get("X-Aggregate-Id") == "lib-9" && !fixed.Load() {
			http.Error(w, "card c-9 does not exist yet", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	attempts := func(id string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls[id])
	}
	env := a.env(t, "HANDLER=webhook", "WEBHOOK_URL="+srv.URL, "RETRY_DELAYS=50ms", "RETRY_MAX_ATTEMPTS=3")
	w := startWorker(t, env)
	w.waitConsuming()
	publish(t, a.exchange,
		message{id: "card-1", typ: cardAdded, aggregate: "lib-1", body: `{"card":"c-1"}`},
		message{id: "card-9", typ: cardAdded, aggregate: "lib-9", body: `{"card":"c-9"}`})
	waitDepth(t, a.dead, 1, 30*time.Second)

	dlqRun(t, env, "list").expect(t, 0, a.dead+": 1 dead letter\n", "oldest", "by type:\n  "+cardAdded+"  1\n", "by reason:\n  exhausted  1\n")
	var sum struct {
		Count    int            `json:"count"`
		Complete bool           `json:"complete"`
		ByReason map[string]int `json:"by_reason"`
		Oldest   string         `json:"oldest"`
	}
	r := dlqRun(t, env, "list", "-o", "json")
	r.expect(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Count != 1 || !sum.Complete || sum.ByReason["exhausted"] != 1 || sum.Oldest == "" {
		t.Errorf("list -o json: %+v, %v\n%s", sum, err, r.stdout)
	}

	dlqRun(t, env, "peek").expect(t, 0, "1 of 1 dead letter", "id:          card-9", "type:        "+cardAdded,
		"aggregate:   lib-9", "reason:      exhausted", "attempts:    3", "last error:  ", "card c-9 does not exist yet",
		`body:        {"card":"c-9"}`)
	var peeked []struct {
		ID        string          `json:"id"`
		Attempts  int             `json:"attempts"`
		LastError string          `json:"last_error"`
		Body      json.RawMessage `json:"body"`
	}
	r = dlqRun(t, env, "peek", "-o", "json", "--type", cardAdded)
	r.expect(t, 0)
	var body bytes.Buffer
	if err := json.Unmarshal([]byte(r.stdout), &peeked); err != nil || len(peeked) != 1 || peeked[0].ID != "card-9" ||
		peeked[0].Attempts != 3 || !strings.Contains(peeked[0].LastError, "500") ||
		json.Compact(&body, peeked[0].Body) != nil || body.String() != `{"card":"c-9"}` {
		t.Errorf("peek -o json: %+v, %v\n%s", peeked, err, r.stdout)
	}

	fixed.Store(true) // the handler is fixed (the card exists now)
	dlqRun(t, env, "replay", "--dry-run").expect(t, 0, "would replay  card-9  "+cardAdded, "dry run: would replay 1 dead letter")
	if n := brokertest.Depth(t, a.dead); n != 1 {
		t.Fatalf("dry run left %d messages in %s, want 1", n, a.dead)
	}
	dlqRun(t, env, "replay").expect(t, 0, "replayed  card-9  "+cardAdded+"\n",
		fmt.Sprintf("replayed 1 dead letter from %s to queue %q", a.dead, a.queue))
	brokertest.Eventually(t, 30*time.Second, "the replayed event handled", func() bool { return len(attempts("card-9")) == 4 })
	w.stop(15 * time.Second)
	if got := attempts("card-9"); !slices.Equal(got, []string{"1", "2", "3", "1"}) {
		t.Errorf("card-9 posted with attempts %v, want [1 2 3 1]", got)
	}
	if got := attempts("card-1"); len(got) != 1 {
		t.Errorf("card-1 posted %d times, want once", len(got))
	}
	for _, q := range []string{a.dead, a.queue} {
		if n := brokertest.Depth(t, q); n != 0 {
			t.Errorf("%d messages left in %s", n, q)
		}
	}
	dlqRun(t, env, "list").expect(t, 0, a.dead+": 0 dead letters\n")
}

// seedDead declares a's dead-letter queue and a plain app queue (no worker
// runs on it in these tests) and puts dead letters with ids into it.
func seedDead(t *testing.T, a app, deadAt time.Time, ids ...string) {
	t.Helper()
	ch := brokertest.Channel(t)
	for _, q := range []string{a.dead, a.queue} {
		if _, err := ch.QueueDeclare(q, true /* durable */, false, false, false,
			amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
			t.Fatal(err)
		}
	}
	// The app's exchange, where replays go, as a worker declares it.
	hops := amqp.HopsExchange(a.queue)
	if err := ch.ExchangeDeclare(hops, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(a.queue, a.queue, hops, false, nil); err != nil {
		t.Fatal(err)
	}
	var pubs []amqp091.Publishing
	for i, id := range ids {
		h := amqp091.Table{amqp.HeaderRoutingKey: cardAdded, amqp.HeaderExchange: a.exchange, amqp.HeaderAttempt: int32(5)}
		amqp.MarkDead(h, amqp.ReasonExhausted, a.name, "boom", deadAt)
		pubs = append(pubs, amqp091.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp091.Persistent,
			MessageId: id, Type: cardAdded, Timestamp: deadAt, Body: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	publishTo(t, ch, "", a.dead, pubs...)
}

func publishTo(t *testing.T, ch *amqp091.Channel, exchange, key string, pubs ...amqp091.Publishing) {
	t.Helper()
	if err := ch.Confirm(false /* noWait */); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range pubs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("seed not confirmed: %v %v", ok, err)
		}
	}
}

// TestDLQ_InterruptedReplayLosesNothing kills "worker dlq replay" mid-way:
// every event is then in the app queue or still in the dead-letter queue
// (in its order), at most one in both.
func TestDLQ_InterruptedReplayLosesNothing(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	var all []string
	for i := range 30 {
		all = append(all, fmt.Sprintf("dl-%02d", i))
	}
	seedDead(t, a, time.Now(), all...)
	p := startWorker(t, a.env(t), "dlq", "replay", "--rate", "5")
	brokertest.Eventually(t, 30*time.Second, "three events replayed", func() bool {
		if p.Exited() {
			t.Fatalf("replay exited with %d early:\n%s%s", p.Code(), p.Stdout.String(), p.Stderr.String())
		}
		return strings.Count(p.Stdout.String(), "replayed  ") >= 3
	})
	p.Kill(t) // SIGKILL: no chance to clean up
	var printed []string
	for _, l := range p.Stdout.Lines() {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "replayed" {
			printed = append(printed, f[1])
		}
	}
	// The broker puts back what the killed process held once it notices
	// the connection is gone.
	brokertest.Eventually(t, 15*time.Second, "every event back in a queue", func() bool {
		return brokertest.Depth(t, a.queue)+brokertest.Depth(t, a.dead) >= len(all)
	})
	inApp := ids(brokertest.Drain(t, a.queue, -1, 300*time.Millisecond))
	inDead := ids(brokertest.Drain(t, a.dead, -1, 300*time.Millisecond))
	for _, id := range all {
		if !slices.Contains(inApp, id) && !slices.Contains(inDead, id) {
			t.Errorf("%s lost: in neither queue", id)
		}
	}
	for _, id := range printed {
		if !slices.Contains(inApp, id) {
			t.Errorf("%s reported replayed but not in %s", id, a.queue)
		}
	}
	var both []string
	for _, id := range inApp {
		if slices.Contains(inDead, id) {
			both = append(both, id)
		}
	}
	if len(both) > 1 {
		t.Errorf("%v in both queues; at most the one in flight may be", both)
	}
	if !slices.IsSorted(inApp) || !slices.IsSorted(inDead) {
		t.Errorf("order changed: app queue %v, dead-letter queue %v", inApp, inDead)
	}
	t.Logf("killed after %d reported; %d in the app queue, %d still dead, %d in both", len(printed), len(inApp), len(inDead), len(both))
}

// TestDLQ_ReplaySIGINTStopsBetweenMessages: Ctrl-C ends a replay with exit
// code 1 after the event in flight, without duplicates.
func TestDLQ_ReplaySIGINTStopsBetweenMessages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	all := []string{"dl-0", "dl-1", "dl-2", "dl-3", "dl-4", "dl-5", "dl-6", "dl-7"}
	seedDead(t, a, time.Now(), all...)
	p := startWorker(t, a.env(t), "dlq", "replay", "--rate", "4")
	brokertest.Eventually(t, 30*time.Second, "one event replayed", func() bool {
		return strings.Contains(p.Stdout.String(), "replayed  dl-0")
	})
	p.signal(syscall.SIGINT)
	if code := p.wait(15 * time.Second); code != 1 {
		t.Fatalf("exit code %d after SIGINT, want 1\n%s", code, p.Stderr.String())
	}
	if want := "interrupted; everything not yet replayed or purged is still in " + a.dead; !strings.Contains(p.Stderr.String(), want) {
		t.Errorf("stderr %q, want %q", p.Stderr.String(), want)
	}
	inApp := ids(brokertest.Drain(t, a.queue, -1, 300*time.Millisecond))
	inDead := ids(brokertest.Drain(t, a.dead, -1, 300*time.Millisecond))
	if got := slices.Concat(inApp, inDead); !slices.Equal(got, all) {
		t.Errorf("app queue %v + dead-letter queue %v, want exactly %v", inApp, inDead, all)
	}
	if n := strings.Count(p.Stdout.String(), "replayed  "); n != len(inApp) {
		t.Errorf("%d reported replayed, %d in the app queue:\n%s", n, len(inApp), p.Stdout.String())
	}
}

func ids(ds []amqp091.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.MessageId)
	}
	return out
}

func TestDLQ_PurgeOlderThan(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	seedDead(t, a, time.Now().Add(-3*time.Hour), "old-0", "old-1")
	seedDead(t, a, time.Now(), "new-0")
	env := a.env(t)
	dlqRun(t, env, "purge", "--older-than", "2h").expect(t, 2)
	dlqRun(t, env, "purge", "--older-than", "2h", "--yes").expect(t, 0, "purged  old-0  "+cardAdded+"\n",
		"purged  old-1  "+cardAdded+"\n", "purged 2 dead letters from "+a.dead)
	dlqRun(t, env, "peek").expect(t, 0, "1 of 1 dead letter", "id:          new-0")
	dlqRun(t, env, "purge", "--yes").expect(t, 0, "purged 1 dead letter from "+a.dead)
	if n := brokertest.Depth(t, a.dead); n != 0 {
		t.Errorf("%d left after purge --yes", n)
	}
}

// TestDLQ_UnroutedReplay: an event nobody was bound for stays in the
// unrouted queue (exit 1) until a binding exists, then replays to it.
func TestDLQ_UnroutedReplay(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	unrouted := amqp.UnroutedQueue(a.exchange)
	ch := brokertest.Channel(t)
	if err := ch.ExchangeDeclare(a.exchange, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(unrouted, true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	// As the publisher keeps it: headers say where it was headed.
	publishTo(t, ch, "", unrouted, amqp091.Publishing{MessageId: "u-1", Type: "LibraryOpenedEvent", DeliveryMode: amqp091.Persistent,
		ContentType: "application/json", Timestamp: time.Now(), Body: []byte(`{}`),
		Headers: amqp091.Table{amqp.HeaderRoutingKey: "LibraryOpenedEvent", amqp.HeaderExchange: a.exchange}})
	env := a.env(t)
	dlqRun(t, env, "--unrouted", "list").expect(t, 0, unrouted+": 1 unrouted event", "unrouted  1")

	r := dlqRun(t, env, "--unrouted", "replay")
	r.expect(t, 1, "kept  u-1  LibraryOpenedEvent: ", "replayed 0 unrouted events", "1 kept in "+unrouted)
	if !strings.Contains(r.stderr, "1 of 1 selected messages kept") {
		t.Errorf("stderr %q", r.stderr)
	}
	if n := brokertest.Depth(t, unrouted); n != 1 {
		t.Fatalf("%d in %s after a returned replay, want 1", n, unrouted)
	}

	bound := brokertest.Name(t)
	brokertest.Cleanup(t, []string{bound}, nil)
	if _, err := ch.QueueDeclare(bound, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(bound, "LibraryOpenedEvent", a.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	dlqRun(t, env, "replay", "--unrouted").expect(t, 0, "replayed  u-1  LibraryOpenedEvent\n",
		fmt.Sprintf("replayed 1 unrouted event from %s to exchange %q", unrouted, a.exchange))
	if got := ids(brokertest.Drain(t, bound, 1, 300*time.Millisecond)); !slices.Equal(got, []string{"u-1"}) {
		t.Errorf("bound queue got %v", got)
	}
	if n := brokertest.Depth(t, unrouted); n != 0 {
		t.Errorf("%d left in %s", n, unrouted)
	}
}

// TestDLQ_ReplayPassiveNeedsNoUnroutedTopology: `worker dlq replay` with
// TOPOLOGY=passive sends dead letters to the app's own exchange and keeps
// no unrouted copies, so it checks only the domain exchange: on a broker
// where no publisher of this version ever declared <EXCHANGE>.unrouted it
// still replays.
func TestDLQ_ReplayPassiveNeedsNoUnroutedTopology(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ch := brokertest.Channel(t)
	if err := ch.ExchangeDeclare(a.exchange, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	seedDead(t, a, time.Now(), "ev-0")
	dlqRun(t, a.env(t, "TOPOLOGY=passive"), "replay").expect(t, 0, "replayed 1")
	if n := brokertest.Depth(t, a.queue); n != 1 {
		t.Errorf("%s holds %d after the replay, want 1", a.queue, n)
	}
	if n := brokertest.Depth(t, amqp.UnroutedQueue(a.exchange)); n != -1 {
		t.Errorf("%s exists after the replay (depth %d): a passive replay declares nothing", amqp.UnroutedQueue(a.exchange), n)
	}
}

// TestDLQ_ReplayPassiveWithoutTheExchangeExitsAtOnce: `worker dlq replay`
// with TOPOLOGY=passive on a broker without the domain exchange exits 1 at
// once, naming the exchange and the fix, instead of retrying until its
// publish times out; nothing leaves the dead-letter queue.
func TestDLQ_ReplayPassiveWithoutTheExchangeExitsAtOnce(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	seedDead(t, a, time.Now(), "ev-0")
	began := time.Now()
	r := dlqRun(t, a.env(t, "TOPOLOGY=passive"), "replay")
	r.expect(t, 1)
	if want := fmt.Sprintf("exchange %q does not exist", a.exchange); !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "TOPOLOGY=declare") {
		t.Errorf("stderr %q, want it to say %s and the fix (TOPOLOGY=declare)", r.stderr, want)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("took %v: a missing exchange must not be retried", took)
	}
	if n := brokertest.Depth(t, a.dead); n != 1 {
		t.Errorf("%s holds %d, want 1", a.dead, n)
	}
}
