package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestSoakMixedFaults runs everything at once: two publishers and three
// workers on a private node, each side behind its own toxiproxy, handlers
// that fail now and then (so retry hops run too), and a fault every few
// seconds drawn at random from: broker kill -9 and restart, cut publisher
// connections, cut worker connections, a half-open link, a worker stopped and
// replaced, a memory alarm. Short: a few faults. Long (-chaos.long): 100,000
// events.
func TestSoakMixedFaults(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	url := node.URL()
	pubProxy, workProxy := newToxi(t, url), newToxi(t, url)
	r := newRig(t, url)

	// One event in a hundred fails its first attempt.
	flaky := func(e event.Event) error {
		if e.Attempt == 1 && strings.HasSuffix(e.ID, "47") {
			return errors.New("flaky downstream")
		}
		return nil
	}
	var wmu sync.Mutex
	workers := []*amqp.Worker{}
	for range 3 {
		workers = append(workers, r.worker(workProxy.url(url), flaky))
	}
	waitReady(t, workers[0])

	n := scale(200000, 100000)
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for i, prefix := range []string{"s1", "s2"} {
		p := r.publisher(pubProxy.url(url))
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			r.publishLoop(p, prefix, n/2, 4, 30*time.Second, time.Duration(2+i)*time.Millisecond, stop)
		}()
	}
	published := make(chan struct{})
	go func() { pubs.Wait(); close(published) }()

	// Measured on 3.10.8: kill a node only once its quorum queues are
	// established (see docs/design.md).
	time.Sleep(15 * time.Second) // the queues' age before the first fault: part of the scenario
	faults := map[string]int{}
	over := func(round int) bool {
		if !*chaosLong {
			return round == 4
		}
		select {
		case <-published:
			return true
		default:
			return false
		}
	}
	for round := 0; !over(round); round++ {
		kind := []string{"kill-broker", "cut-publishers", "cut-workers", "half-open", "replace-worker", "memory-alarm"}[rand.N(6)]
		faults[kind]++
		start := time.Now()
		switch kind {
		case "kill-broker":
			node.Kill(t)
			time.Sleep(500 * time.Millisecond) // the outage's length: the fault itself
			node.Start(t)
		case "cut-publishers":
			pubProxy.cutAll(t)
		case "cut-workers":
			workProxy.cutAll(t)
		case "half-open":
			x := []*toxi{pubProxy, workProxy}[rand.N(2)]
			x.add(t, "silence-up", "timeout", "upstream", `{"timeout":0}`)
			x.add(t, "silence-down", "timeout", "downstream", `{"timeout":0}`)
			time.Sleep(3 * time.Second) // the silence's length: the fault itself
			x.remove(t, "silence-up")
			x.remove(t, "silence-down")
		case "replace-worker":
			wmu.Lock()
			i := rand.N(len(workers))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = workers[i].Stop(ctx)
			cancel()
			workers[i] = r.worker(workProxy.url(url), flaky)
			wmu.Unlock()
		case "memory-alarm":
			node.Ctl(t, "set_vm_memory_high_watermark", "0.0000001")
			time.Sleep(2 * time.Second) // the alarm's length: the fault itself
			node.Ctl(t, "set_vm_memory_high_watermark", "0.4")
		}
		t.Logf("fault %d: %s (%v)", round+1, kind, time.Since(start).Round(time.Millisecond))
		time.Sleep(time.Duration(2000+rand.N(2000)) * time.Millisecond) // load between faults: pacing
	}
	close(stop)
	<-published
	t.Logf("faults: %v", faults)
	rep := r.settle(url, 5*time.Minute)
	if rep.Confirmed < 1000 {
		t.Fatalf("only %d events confirmed: the soak proved little", rep.Confirmed)
	}
}
