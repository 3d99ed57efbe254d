package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// numbered returns events from..to-1 as NDJSON: ids e-<n>, and "n" in the
// data so that an event whose id is generated (idless) is still known by
// its body.
func numbered(from, to int, idless func(n int) bool) string {
	var b strings.Builder
	for n := from; n < to; n++ {
		if idless != nil && idless(n) {
			fmt.Fprintf(&b, `{"type":"Outage.Test","aggregate_id":"a-%d","data":{"n": %d}}`+"\n", n%7, n)
			continue
		}
		fmt.Fprintf(&b, `{"type":"Outage.Test","id":"e-%d","aggregate_id":"a-%d","data":{"n": %d}}`+"\n", n, n%7, n)
	}
	return b.String()
}

// feeder writes stdin of a publish run in pieces, from the test's goroutine
// or in the background (a write blocks while the publisher cannot take more).
type feeder struct {
	w    *io.PipeWriter
	done chan struct{}
}

func newFeeder() (*feeder, io.Reader) {
	r, w := io.Pipe()
	f := &feeder{w: w, done: make(chan struct{})}
	close(f.done)
	return f, r
}

// write sends s after what was written before, in the background.
func (f *feeder) write(s string) {
	prev, done := f.done, make(chan struct{})
	f.done = done
	go func() {
		<-prev
		_, _ = io.WriteString(f.w, s)
		close(done)
	}()
}

// close ends stdin after everything written.
func (f *feeder) close() {
	prev := f.done
	go func() { <-prev; _ = f.w.Close() }()
}

// brokerAt is test plumbing on the broker at url (the shared one or a
// private node).
type brokerAt struct{ url string }

// depth is the queue's ready messages, -1 while the broker is unreachable.
func (b brokerAt) depth(queue string) int {
	conn, err := amqp091.Dial(b.url)
	if err != nil {
		return -1
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return -1
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return -1
	}
	return q.Messages
}

// drain reads queue until it stays empty for a second and returns the
// messages by their data's "n", with the ids each arrived under.
func (b brokerAt) drain(t *testing.T, queue string) map[int][]string {
	t.Helper()
	conn, err := amqp091.Dial(b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]string{}
	last := time.Now()
	for time.Since(last) < time.Second {
		d, ok, err := ch.Get(queue, true /* autoAck */)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			// Empty for now: look again until it stays empty for a
			// second, the quiet period that ends the drain.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		last = time.Now()
		var body struct{ N int }
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatalf("message %s: body %q: %v", d.MessageId, d.Body, err)
		}
		got[body.N] = append(got[body.N], d.MessageId)
	}
	return got
}

// declareTap declares exchange as the publisher does and a durable classic
// queue bound to it for every event (durable: it must outlive kill -9).
func (b brokerAt) declareTap(t *testing.T, exchange, queue string) {
	t.Helper()
	conn, err := amqp091.Dial(b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, amqp091.ExchangeTopic,
		true,  // durable
		false, // autoDelete
		false, // internal
		false, // noWait
		nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false /* noWait */, nil); err != nil {
		t.Fatal(err)
	}
	// The publisher's unrouted queue, declared now so that it is old
	// enough when the node is killed (see TestPublisher_BrokerKilledAndRestarted).
	if _, err := ch.QueueDeclare(amqp.UnroutedQueue(exchange),
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
}

func waitDepth(t *testing.T, p *proc, b brokerAt, queue string, atLeast int) {
	t.Helper()
	p.Poll(t, 3*time.Minute, fmt.Sprintf("%d messages in %s", atLeast, queue), func() bool {
		return b.depth(queue) >= atLeast
	})
}

// checkAll fails t unless every n in [0, total) arrived, each under its id e-<n>.
func checkAll(t *testing.T, got map[int][]string, total int) {
	t.Helper()
	missing, dups := 0, 0
	for n := range total {
		ids := got[n]
		if len(ids) == 0 {
			missing++
			continue
		}
		dups += len(ids) - 1
		for _, id := range ids {
			if id != fmt.Sprintf("e-%d", n) {
				t.Errorf("event %d arrived with id %q", n, id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events are not in the queue", missing, total)
	}
	t.Logf("%d events, %d missing, %d duplicates", total, missing, dups)
}

// TestPublish_BrokerKilledTwice: `publisher publish` streams 5,000 events
// while its broker node is killed with SIGKILL and restarted, twice; with
// the default PUBLISH_TIMEOUT every event is published, exit 0.
func TestPublish_BrokerKilledTwice(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	b := brokerAt{node.URL()}
	const exchange, queue = "domain_events", "tap"
	b.declareTap(t, exchange, queue)
	declared := time.Now()

	f, stdin := newFeeder()
	p := startBin(t, []string{"AMQP_URL=" + node.URL(), "EXCHANGE=" + exchange, "APP_NAME=publisher-test",
		"PUBLISH_WINDOW=64"}, stdin, "publish")
	f.write(numbered(0, 1000, nil))
	waitDepth(t, p, b, queue, 1000)
	// A node killed seconds after a quorum queue was declared restarts
	// without its leader (design.md): wait until it is 15 s old. An age,
	// not a state: nothing the broker shows tells when that risk is over.
	time.Sleep(time.Until(declared.Add(15 * time.Second)))
	for i, from := range []int{1000, 2000} {
		f.write(numbered(from, from+1000, nil))
		waitDepth(t, p, b, queue, from+100) // killed mid-stream
		node.Kill(t)
		t.Logf("kill %d", i+1)
		node.Start(t)
		waitDepth(t, p, b, queue, from+1000)
	}
	f.write(numbered(3000, 5000, nil))
	f.close()
	if code := p.wait(t, 3*time.Minute); code != 0 || p.stdout.String() != "published=5000 failed=0\n" {
		t.Fatalf("exit %d, stdout %q; want 0 and published=5000 failed=0; stderr:\n%.4000s", code, p.stdout, p.stderr)
	}
	if n := len(p.logLines("connected to broker")); n < 2 {
		t.Errorf("%d reconnects logged, want 2: the kills missed the run", n)
	}
	checkAll(t, b.drain(t, queue), 5000)
}

// TestPublish_ShortSilentPartition: a 15 s silent partition (no byte moves,
// nothing is closed) mid-stream, shorter than the default PUBLISH_TIMEOUT:
// every event is published, exit 0.
func TestPublish_ShortSilentPartition(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	b := brokerAt{brokertest.URL(t)}
	proxy := brokertest.NewProxy(t)
	f, stdin := newFeeder()
	p := startBin(t, []string{"AMQP_URL=" + proxy.URL(t), "EXCHANGE=" + exchange, "APP_NAME=publisher-test",
		"PUBLISH_WINDOW=64"}, stdin, "publish")
	f.write(numbered(0, 1000, nil))
	waitDepth(t, p, b, queue, 1000)
	proxy.Partition()
	f.write(numbered(1000, 2000, nil))
	time.Sleep(15 * time.Second) // the partition's length, not a wait for a state
	proxy.Heal()
	f.write(numbered(2000, 3000, nil))
	f.close()
	if code := p.wait(t, 3*time.Minute); code != 0 || p.stdout.String() != "published=3000 failed=0\n" {
		t.Fatalf("exit %d, stdout %q; want 0 and published=3000 failed=0; stderr:\n%.4000s", code, p.stdout, p.stderr)
	}
	checkAll(t, b.drain(t, queue), 3000)
}

// TestPublish_LongPartitionWritesTheFailedFile: a partition longer than
// PUBLISH_TIMEOUT fails the run (exit 1); --failed FILE then holds every
// event that is not in the queue, with the id it was published under, and
// `publisher publish --file FILE` on the healthy broker sends exactly those.
func TestPublish_LongPartitionWritesTheFailedFile(t *testing.T) {
	t.Parallel()
	exchange, queue := testExchange(t)
	b := brokerAt{brokertest.URL(t)}
	proxy := brokertest.NewProxy(t)
	failedPath := filepath.Join(t.TempDir(), "failed.ndjson")
	const total = 2000
	idless := func(n int) bool { return n%3 == 0 } // their ids are generated
	f, stdin := newFeeder()
	p := startBin(t, []string{"AMQP_URL=" + proxy.URL(t), "EXCHANGE=" + exchange, "APP_NAME=publisher-test",
		"PUBLISH_WINDOW=64", "PUBLISH_TIMEOUT=3s"}, stdin, "publish", "--failed", failedPath)
	f.write(numbered(0, 1000, idless))
	waitDepth(t, p, b, queue, 1000)
	proxy.Partition()
	f.write(numbered(1000, total, idless))
	f.close()
	code := p.wait(t, 3*time.Minute)
	proxy.Heal()
	stdout, stderr := p.stdout.String(), p.stderr.String()
	if code != 1 || !strings.Contains(stderr, "gave up: no confirm within PUBLISH_TIMEOUT (3s)") {
		t.Fatalf("exit %d, want 1 with the reason; stdout %q stderr:\n%.4000s", code, stdout, stderr)
	}
	var published, failed int
	if _, err := fmt.Sscanf(stdout, "published=%d failed=%d\n", &published, &failed); err != nil || published+failed != total {
		t.Fatalf("stdout %q, want published+failed = %d", stdout, total)
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d events not confirmed are in %s", failed, failedPath)) {
		t.Errorf("stderr does not point at the failed file:\n%.4000s", stderr)
	}

	inQueue := b.drain(t, queue)
	inFile := readFailed(t, failedPath)
	if len(inFile) != failed {
		t.Errorf("failed file holds %d events, stdout says failed=%d", len(inFile), failed)
	}
	prev := -1
	for _, ev := range inFile {
		if ev.n <= prev {
			t.Errorf("failed file out of input order: %d after %d", ev.n, prev)
		}
		prev = ev.n
		if !idless(ev.n) && ev.id != fmt.Sprintf("e-%d", ev.n) {
			t.Errorf("event %d in the failed file has id %q, want its own", ev.n, ev.id)
		}
		// In the queue as well: the broker took it, the confirm was lost
		// in the partition. The same id lets receivers deduplicate.
		for _, id := range inQueue[ev.n] {
			if id != ev.id {
				t.Errorf("event %d: in the queue as %q, in the failed file as %q", ev.n, id, ev.id)
			}
		}
	}
	fileIDs := map[int]string{}
	both := 0
	for _, ev := range inFile {
		fileIDs[ev.n] = ev.id
		if len(inQueue[ev.n]) > 0 {
			both++
		}
	}
	t.Logf("%s; %d events in the failed file, %d of them also in the queue", strings.TrimSpace(stdout), len(inFile), both)
	for n := range total {
		if len(inQueue[n]) == 0 && fileIDs[n] == "" {
			t.Errorf("event %d is neither in the queue nor in the failed file", n)
		}
	}

	// Send them again, straight to the broker.
	out, errOut, code := runBin(t, brokerEnv(t, exchange), nil, "publish", "--file", failedPath)
	if code != 0 || out != fmt.Sprintf("published=%d failed=0\n", failed) {
		t.Fatalf("resend: exit %d, stdout %q; want 0 and published=%d; stderr:\n%.3000s", code, out, failed, errOut)
	}
	resent := b.drain(t, queue)
	for n := range total {
		if len(inQueue[n]) == 0 && len(resent[n]) == 0 {
			t.Errorf("event %d is missing after the resend", n)
		}
		for _, id := range resent[n] {
			if id != fileIDs[n] {
				t.Errorf("event %d resent as %q, the failed file says %q", n, id, fileIDs[n])
			}
		}
	}
}

type failedEvent struct {
	id string
	n  int
}

func readFailed(t *testing.T, path string) []failedEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []failedEvent
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		var in struct {
			ID   string
			Type string
			Data struct{ N int }
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil || in.ID == "" || in.Type != "Outage.Test" {
			t.Fatalf("failed file line %q: %v", line, err)
		}
		out = append(out, failedEvent{id: in.ID, n: in.Data.N})
	}
	return out
}

// TestPublish_InterruptedTwiceWritesTheFailedFile: with no broker, SIGINT
// says what it waits for, a second SIGINT gives up at once, and the failed
// file holds every event of the input file.
func TestPublish_InterruptedTwiceWritesTheFailedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, failedPath := filepath.Join(dir, "in.ndjson"), filepath.Join(dir, "failed.ndjson")
	if err := os.WriteFile(in, []byte(numbered(0, 50, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBin(t, []string{"AMQP_URL=amqp://guest:guest@127.0.0.1:1/", "EXCHANGE=" + brokertest.Name(t),
		"PUBLISH_WINDOW=8"}, nil, "publish", "--file", in, "--failed", failedPath)
	p.Poll(t, time.Minute, "a connection attempt", func() bool {
		return len(p.logLines("broker connection failed; retrying")) > 0
	})
	p.Signal(t, syscall.SIGINT)
	// With events in flight (the likely case) it waits for them and says
	// so; with none yet, it is done at once: the outcome is the same.
	p.Poll(t, time.Minute, "the first signal's message", func() bool {
		return strings.Contains(p.stderr.String(), "interrupted: stopped sending")
	})
	p.Signal(t, syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 1 || p.stdout.String() != "published=0 failed=50\n" {
		t.Fatalf("exit %d, stdout %q; want 1 and published=0 failed=50; stderr:\n%s", code, p.stdout, p.stderr)
	}
	got := readFailed(t, failedPath)
	if len(got) != 50 {
		t.Fatalf("failed file holds %d events, want 50", len(got))
	}
	for i, ev := range got {
		if ev.n != i || ev.id != fmt.Sprintf("e-%d", i) {
			t.Errorf("failed file line %d: %+v", i+1, ev)
		}
	}
}

// TestPublish_FailedFileErrors: a --failed path that cannot be written, or
// that is the input itself, fails before anything is sent.
func TestPublish_FailedFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(in, []byte(numbered(0, 3, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"AMQP_URL=amqp://guest:guest@127.0.0.1:1/", "EXCHANGE=" + brokertest.Name(t)}
	tests := []struct{ failed, want string }{
		{filepath.Join(dir, "no-such-dir", "failed.ndjson"), "--failed file: open " + filepath.Join(dir, "no-such-dir", "failed.ndjson") + ": no such file or directory; nothing was published"},
		{in, "--failed must not be the events file (" + in + ")"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runBin(t, env, nil, "publish", "--file", in, "--failed", tt.failed)
		if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("--failed %s: exit %d, stdout %q, stderr %q; want 1, nothing, %q", tt.failed, code, stdout, stderr, tt.want)
		}
	}
	if b, _ := os.ReadFile(in); string(b) != numbered(0, 3, nil) {
		t.Errorf("the input file was changed: %q", b)
	}
}
