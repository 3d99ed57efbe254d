package chaos

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
	"github.com/eventfleet/eventfleet/webhook"
)

var (
	clusterSeed     = flag.Uint64("chaos.seed", 0, "seed of the cluster suite's random fault schedule (0: a new one, printed)")
	clusterDuration = flag.Duration("chaos.cluster", 10*time.Minute, "how long the random fault schedule runs with -chaos.long")
)

// clusterEventType is what the cluster fleet publishes; the workers bind
// every type.
const clusterEventType = "ChaosClusterEvent"

// Event ids end in their class: the webhook fails a ".r" event's first
// request (one trip through a retry queue) and every request of a ".p"
// event (poison: dead-lettered after RETRY_MAX_ATTEMPTS), so that faults
// also hit events on the retry and dead-letter paths.
const (
	classGood   = ".g"
	classRetry  = ".r"
	classPoison = ".p"
)

func clusterClass(n int) string {
	switch {
	case n%97 == 13:
		return classPoison
	case n%11 == 5:
		return classRetry
	}
	return classGood
}

// clusterHook is the workers' webhook: it records what it handled, and
// fails retry and poison events as their class says.
type clusterHook struct {
	check *Checker

	mu       sync.Mutex
	requests map[string]int
	retried  atomic.Int64
}

func (h *clusterHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(webhook.HeaderEventID)
	_, _ = io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.requests[id]++
	n := h.requests[id]
	h.mu.Unlock()
	switch {
	case strings.HasSuffix(id, classPoison):
		http.Error(w, "poison", http.StatusInternalServerError)
		return
	case strings.HasSuffix(id, classRetry) && n == 1:
		h.retried.Add(1)
		http.Error(w, "first attempt fails", http.StatusInternalServerError)
		return
	}
	if r.Context().Err() != nil {
		return // the worker went away: it will not ack
	}
	h.check.Handled(id)
	w.WriteHeader(http.StatusNoContent)
}

// clusterFleet is one scenario on the shared three-node cluster: an app and
// exchange of its own, worker processes, a `publisher serve` fed over HTTP
// and `publisher publish` runs, all given every node in AMQP_URL.
type clusterFleet struct {
	c        *brokertest.Cluster
	exchange string
	app      string
	check    *Checker
	hook     *clusterHook
	env      []string // the workers'
	pubEnv   []string // the publishers'
	workers  []*procWorker
	serve    *proctest.Proc
	serveURL string

	mu    sync.Mutex
	known map[string]bool // every id a publish was attempted for
	next  atomic.Int64    // the next event number

	stop     chan struct{}
	stopOnce sync.Once
	pubs     sync.WaitGroup
	serveReq atomic.Int64 // requests to serve
	runs     atomic.Int64 // `publisher publish` runs
}

func newClusterFleet(t *testing.T, c *brokertest.Cluster, workers int) *clusterFleet {
	t.Helper()
	f := &clusterFleet{
		c:        c,
		exchange: brokertest.Name(t),
		app:      brokertest.Name(t),
		check:    NewChecker(),
		known:    map[string]bool{},
		stop:     make(chan struct{}),
	}
	f.hook = &clusterHook{check: f.check, requests: map[string]int{}}
	srv := httptest.NewServer(f.hook)
	t.Cleanup(srv.Close)
	f.pubEnv = []string{
		"AMQP_URL=" + c.URLList(),
		"EXCHANGE=" + f.exchange,
		"LOG_LEVEL=info",
		"METRICS_ADDR=127.0.0.1:0",
	}
	f.env = append(f.pubEnv[:len(f.pubEnv):len(f.pubEnv)],
		"APP_NAME="+f.app,
		"HANDLER=webhook",
		"WEBHOOK_URL="+srv.URL+"/events",
		"RETRY_DELAYS=100ms,200ms",
		"RETRY_MAX_ATTEMPTS=3",
	)
	for range workers {
		w := f.startWorker(t)
		w.waitConsuming(t)
	}
	f.startServe(t)
	// Publishing stops before the processes are killed (cleanups run last
	// first), so that no outcome is recorded for a process the test killed.
	t.Cleanup(f.stopPublishing)
	return f
}

func (f *clusterFleet) startWorker(t *testing.T) *procWorker {
	t.Helper()
	p := proctest.Start(t, procWorkerBin.Path(t), f.env)
	w := &procWorker{Proc: p, name: fmt.Sprintf("worker %d (pid %d)", len(f.workers)+1, p.Pid())}
	f.workers = append(f.workers, w)
	return w
}

func (f *clusterFleet) startServe(t *testing.T) {
	t.Helper()
	env := append(f.pubEnv[:len(f.pubEnv):len(f.pubEnv)],
		"APP_NAME=chaos-serve",
		"PUBLISHER_ADDR=127.0.0.1:0",
		"PUBLISHER_AUTH=none",
		"PUBLISH_TIMEOUT=5s",
	)
	f.serve = proctest.Start(t, relayBin.Path(t), env, "serve")
	f.serve.WaitLog(t, time.Minute, `"msg":"listening"`)
	for _, l := range f.serve.Stderr.Lines() {
		var rec struct {
			Msg, Addr string
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "listening" {
			f.serveURL = "http://" + rec.Addr + "/events"
		}
	}
	if f.serveURL == "" {
		t.Fatal("publisher serve logged no listening address")
	}
}

// serveNode is the cluster node the serve process is connected to, by its
// last "connected to broker" log line (nil before the first).
func (f *clusterFleet) serveNode() *brokertest.Node {
	var node string
	for _, l := range f.serve.Stderr.Lines() {
		var rec struct{ Msg, Node string }
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "connected to broker" {
			node = rec.Node
		}
	}
	for _, n := range f.c.Nodes {
		if node == "127.0.0.1:"+strconv.Itoa(n.Port) {
			return n
		}
	}
	return nil
}

// ids takes the next n event numbers and registers their ids as known.
func (f *clusterFleet) ids(prefix string, n int) []string {
	ids := make([]string, n)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range ids {
		k := int(f.next.Add(1))
		ids[i] = fmt.Sprintf("%s-%06d%s", prefix, k, clusterClass(k))
		f.known[ids[i]] = true
	}
	return ids
}

func (f *clusterFleet) isKnown(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.known[id]
}

// publish starts the steady publish: HTTP requests of 5 events to serve
// from 4 callers about 10 times a second each, and `publisher publish`
// runs of 100 events one after another.
func (f *clusterFleet) publish(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	for range 4 {
		f.pubs.Add(1)
		go func() {
			defer f.pubs.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-f.stop:
					return
				case <-tick.C:
				}
				f.postOnce(client, f.ids("s", 5))
			}
		}()
	}
	dir := t.TempDir()
	f.pubs.Add(1)
	go func() {
		defer f.pubs.Done()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			default:
			}
			f.publishRun(t, filepath.Join(dir, strconv.Itoa(i)), f.ids("b", 100))
		}
	}()
}

// postOnce sends ids to serve in one request and records each outcome: a
// 202 confirms all, a 503 names the confirmed ones (the rest are
// indeterminate), and no answer leaves all indeterminate.
func (f *clusterFleet) postOnce(client *http.Client, ids []string) {
	f.serveReq.Add(1)
	var body bytes.Buffer
	body.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":%q,"type":%q,"data":{"n":%d}}`, id, clusterEventType, i)
	}
	body.WriteByte(']')
	resp, err := client.Post(f.serveURL, "application/json", &body)
	if err != nil {
		for _, id := range ids {
			f.check.Indeterminate(id)
		}
		return
	}
	defer resp.Body.Close()
	var answer struct {
		IDs         []string `json:"ids"`
		Confirmed   []string `json:"confirmed"`
		Unconfirmed []string `json:"unconfirmed"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	switch resp.StatusCode {
	case http.StatusAccepted:
		for _, id := range ids {
			f.check.Published(id, nil)
		}
	case http.StatusServiceUnavailable:
		confirmed := map[string]bool{}
		for _, id := range answer.Confirmed {
			confirmed[id] = true
		}
		for _, id := range ids {
			if confirmed[id] {
				f.check.Published(id, nil)
			} else {
				f.check.Indeterminate(id)
			}
		}
	default:
		// 429 and the like: refused before anything was sent.
		for _, id := range ids {
			f.check.Published(id, fmt.Errorf("serve answered %d: %w", resp.StatusCode, amqp.ErrNacked))
		}
	}
}

// publishRun runs `publisher publish` on ids; the events it does not list
// in --failed were confirmed, those it lists are indeterminate (a timeout
// or a lost connection may still have delivered them).
func (f *clusterFleet) publishRun(t *testing.T, base string, ids []string) {
	f.runs.Add(1)
	var in bytes.Buffer
	for i, id := range ids {
		fmt.Fprintf(&in, `{"id":%q,"type":%q,"data":{"n":%d}}`+"\n", id, clusterEventType, i)
	}
	events, failed := base+".ndjson", base+".failed"
	if err := os.WriteFile(events, in.Bytes(), 0o644); err != nil {
		t.Error(err)
		return
	}
	env := append(f.pubEnv[:len(f.pubEnv):len(f.pubEnv)],
		"APP_NAME=chaos-publish", "PUBLISH_TIMEOUT=15s", "PUBLISH_DEADLINE=45s")
	p := proctest.Start(t, relayBin.Path(t), env, "publish", "--file", events, "--failed", failed)
	code, exited := p.Wait(2 * time.Minute)
	if t.Failed() {
		return // the test's end killed it: no outcome to record
	}
	if !exited || (code != 0 && code != 1) {
		t.Errorf("publisher publish: exit %d (exited %v); stderr:\n%s", code, exited, proctest.Tail(p.Stderr.String(), 2000))
		for _, id := range ids {
			f.check.Indeterminate(id)
		}
		return
	}
	notConfirmed := map[string]bool{}
	if b, err := os.ReadFile(failed); err == nil {
		for _, l := range bytes.Split(b, []byte("\n")) {
			var ev struct{ ID string }
			if json.Unmarshal(l, &ev) == nil && ev.ID != "" {
				notConfirmed[ev.ID] = true
			}
		}
	}
	if code == 1 && len(notConfirmed) == 0 {
		t.Errorf("publisher publish exit 1 with nothing in --failed; stderr:\n%s", proctest.Tail(p.Stderr.String(), 2000))
	}
	for _, id := range ids {
		if notConfirmed[id] {
			f.check.Indeterminate(id)
		} else {
			f.check.Published(id, nil)
		}
	}
}

func (f *clusterFleet) stopPublishing() {
	f.stopOnce.Do(func() { close(f.stop) })
	f.pubs.Wait()
}

// settle stops publishing, waits until every confirmed event was handled
// or dead-lettered, and checks the verdict: nothing confirmed lost, no
// phantom, every poison event dead and nothing else dead.
func (f *clusterFleet) settle(t *testing.T, timeout time.Duration) Report {
	t.Helper()
	f.stopPublishing()
	f.c.WaitHealthy(t, 3*time.Minute)
	ch := f.deadReader(t)
	queue := amqp.AppQueue(f.app)
	dead := amqp.DeadQueue(queue)
	wrongDead := 0
	drain := func() {
		for {
			d, ok, err := ch.Get(dead, true)
			if err != nil {
				t.Fatalf("get from %s: %v", dead, err)
			}
			if !ok {
				return
			}
			if !strings.HasSuffix(d.MessageId, classPoison) {
				wrongDead++
				t.Logf("dead letter %s: reason %v, error %v", d.MessageId, d.Headers[amqp.HeaderReason], d.Headers[amqp.HeaderLastError])
			}
			f.check.Dead(d.MessageId)
		}
	}
	deadline := time.Now().Add(timeout)
	for drain(); !f.check.Settled() && time.Now().Before(deadline); drain() {
		time.Sleep(200 * time.Millisecond)
	}
	r := f.check.Report(f.isKnown)
	t.Logf("%v; %d serve requests, %d publish runs, %d first attempts failed for a retry",
		r, f.serveReq.Load(), f.runs.Load(), f.hook.retried.Load())
	if !r.OK() {
		t.Errorf("promise broken: %v", r)
		t.Logf("queues now:\n%s", f.c.Queues())
	}
	if r.Confirmed == 0 {
		t.Error("nothing was confirmed: the scenario proved nothing")
	}
	if wrongDead > 0 {
		t.Errorf("%d events that are not poison were dead-lettered", wrongDead)
	}
	return r
}

// deadReader is a channel on a running node, for reading dead letters.
func (f *clusterFleet) deadReader(t *testing.T) *amqp091.Channel {
	t.Helper()
	var last error
	for _, u := range f.c.URLs() {
		conn, err := amqp091.Dial(u)
		if err != nil {
			last = err
			continue
		}
		t.Cleanup(func() { _ = conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			last = err
			continue
		}
		return ch
	}
	t.Fatalf("no cluster node to read dead letters from: %v", last)
	return nil
}

// A clusterFault is one fault and its repair; it returns once the cluster
// may be whole again (the caller waits for that).
type clusterFault struct {
	name string
	run  func(t *testing.T, f *clusterFleet, rng *rand.Rand)
}

var clusterFaults = []clusterFault{
	{"kill-leader", func(t *testing.T, f *clusterFleet, _ *rand.Rand) {
		queue := amqp.AppQueue(f.app)
		leader := f.c.LeaderOf(t, queue)
		began := time.Now()
		leader.Kill(t)
		brokertest.Eventually(t, time.Minute, "a new leader of "+queue, func() bool {
			return f.c.LeaderOf(t, queue) != leader
		})
		t.Logf("killed %s (the leader of %s); new leader after %v", leader.Name, queue, time.Since(began).Round(time.Millisecond))
		time.Sleep(2 * time.Second) // publishing goes on without the node
		leader.Start(t)
	}},
	{"pause-node", func(t *testing.T, f *clusterFleet, rng *rand.Rand) {
		n := f.c.Nodes[rng.IntN(len(f.c.Nodes))]
		n.Pause(t)
		t.Logf("paused %s for 20s (net_ticktime is 10s)", n.Name)
		time.Sleep(20 * time.Second)
		n.Resume(t)
		repair(t, f.c, n)
	}},
	{"partition-node", func(t *testing.T, f *clusterFleet, rng *rand.Rand) {
		// The node serve uses, so that a publisher sits in the minority;
		// the workers spread over all three.
		n := f.serveNode()
		if n == nil {
			n = f.c.Nodes[rng.IntN(len(f.c.Nodes))]
		}
		f.c.Partition(t, n)
		t.Logf("cut %s off the others for 25s", n.Name)
		time.Sleep(25 * time.Second)
		f.c.Heal(t)
		repair(t, f.c, n)
	}},
	{"rolling-restart", func(t *testing.T, f *clusterFleet, _ *rand.Rand) {
		for _, n := range f.c.Nodes {
			n.StopClean(t)
			n.Start(t)
			f.c.WaitHealthy(t, 3*time.Minute)
			t.Logf("restarted %s", n.Name)
		}
	}},
}

// repair gives the cluster 15 s (a minute with -chaos.long) to heal after
// n came back, else restarts n (brokertest.Cluster.Repair). When it heals
// itself it takes 2–8 s (measured).
func repair(t *testing.T, c *brokertest.Cluster, n *brokertest.Node) {
	t.Helper()
	c.Repair(t, n, time.Duration(scale(15, 60))*time.Second)
}

// TestClusterFaults runs each fault once (three times with -chaos.long)
// on a private three-node cluster under a steady publish, each scenario
// with an app and workers of its own; with -chaos.long it then runs a
// random schedule of faults for -chaos.cluster (10 minutes) with a printed
// seed (-chaos.seed replays one).
func TestClusterFaults(t *testing.T) {
	brokertest.SkipUnlessClusterTests(t)
	procWorkerBin.Path(t)
	relayBin.Path(t)
	c := brokertest.StartCluster(t, 3)
	seed := *clusterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -chaos.seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, fault := range clusterFaults {
		for i := range scale(1, 3) {
			ok := t.Run(fmt.Sprintf("%s-%d", fault.name, i+1), func(t *testing.T) {
				f := newClusterFleet(t, c, 3)
				f.publish(t)
				time.Sleep(3 * time.Second)
				fault.run(t, f, rng)
				f.c.WaitHealthy(t, 3*time.Minute)
				time.Sleep(3 * time.Second) // and on a whole cluster
				f.settle(t, 3*time.Minute)
			})
			if !ok {
				return // the cluster may not be whole: later scenarios would fail for it
			}
		}
	}
	if !*chaosLong {
		return
	}
	t.Run("random-schedule", func(t *testing.T) {
		f := newClusterFleet(t, c, 3)
		f.publish(t)
		end := time.Now().Add(*clusterDuration)
		for n := 1; time.Now().Before(end); n++ {
			fault := clusterFaults[rng.IntN(len(clusterFaults))]
			t.Logf("fault %d: %s", n, fault.name)
			fault.run(t, f, rng)
			f.c.WaitHealthy(t, 3*time.Minute)
			time.Sleep(time.Duration(2+rng.IntN(8)) * time.Second)
		}
		f.settle(t, 5*time.Minute)
	})
}
