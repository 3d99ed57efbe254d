package chaos

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Scenario 1: the broker is killed with SIGKILL (and once stopped cleanly) and
// restarted while publishers and workers run.
func TestBrokerKilledAndRestartedUnderLoad(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	url := node.URL()
	r := newRig(t, url)
	w1 := r.worker(url, nil)
	r.worker(url, nil)
	waitReady(t, w1)
	p1, p2 := r.publisher(url), r.publisher(url)

	// Publish until the rounds are over (bounded), so every fault hits a
	// running load.
	rounds := scale(3, 10)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range []*amqp.Publisher{p1, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.publishLoop(p, []string{"k1", "k2"}[i], 500000, 4, 20*time.Second, 10*time.Millisecond, stop)
		}()
	}
	// Measured on 3.10.8: a node killed within seconds of declaring a quorum
	// queue restarts with the queue leaderless; let it settle first, as a
	// production broker would have.
	time.Sleep(15 * time.Second) // the queues' age before the first kill: part of the scenario
	for round := range rounds {
		if round == 1 {
			node.StopClean(t)
		} else {
			node.Kill(t)
		}
		time.Sleep(time.Second) // the outage's length: the fault itself
		start := time.Now()
		node.Start(t)
		booted := time.Now()
		waitReady(t, w1)
		t.Logf("round %d: broker booted in %v; worker consuming %v after the broker accepted connections", round+1,
			booted.Sub(start).Round(time.Millisecond), time.Since(booted).Round(time.Millisecond))
		time.Sleep(2 * time.Second) // load between rounds: pacing
	}
	close(stop)
	wg.Wait()
	rep := r.settle(url, 2*time.Minute)
	if rep.Confirmed == 0 {
		t.Fatal("nothing was confirmed: the scenario proved nothing")
	}
}

// Scenario 2: connections reset and half-open, publisher side and worker side
// separately, through toxiproxy.
func TestConnectionFaults(t *testing.T) {
	for _, side := range []string{"publisher", "worker"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			url := brokertest.URL(t)
			proxy := newToxi(t, url)
			r := newRig(t, url)
			pubURL, workURL := url, url
			if side == "publisher" {
				pubURL = proxy.url(url)
			} else {
				workURL = proxy.url(url)
			}
			w := r.worker(workURL, nil)
			waitReady(t, w)
			p := r.publisher(pubURL)
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				r.publishLoop(p, side, 500000, 4, 20*time.Second, 5*time.Millisecond, stop)
			}()
			for round := range scale(2, 8) {
				time.Sleep(time.Second) // load between faults: pacing
				// reset_peer: the next bytes get a TCP RST.
				proxy.add(t, "reset", "reset_peer", "downstream", `{"timeout":0}`)
				time.Sleep(300 * time.Millisecond) // the reset's length: the fault itself
				proxy.remove(t, "reset")
				time.Sleep(time.Second) // load between faults: pacing
				// Half-open: no data flows either way, no FIN, no RST. Only
				// heartbeats (1s here) can tell.
				proxy.add(t, "silence-up", "timeout", "upstream", `{"timeout":0}`)
				proxy.add(t, "silence-down", "timeout", "downstream", `{"timeout":0}`)
				time.Sleep(4 * time.Second) // the silence's length: the fault itself
				proxy.remove(t, "silence-up")
				proxy.remove(t, "silence-down")
				t.Logf("round %d done", round+1)
			}
			close(stop)
			<-done
			r.settle(url, 2*time.Minute)
		})
	}
}

// Scenario 5: a memory alarm on the broker while publishers and workers run.
// Publishers block or fail by their deadline, nothing deadlocks, all resumes.
func TestMemoryAlarmUnderLoad(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	url := node.URL()
	r := newRig(t, url)
	w := r.worker(url, nil)
	waitReady(t, w)
	p := r.publisher(url)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		r.publishLoop(p, "alarm", 500000, 4, 2*time.Second, 5*time.Millisecond, stop)
	}()
	time.Sleep(time.Second) // load before the fault: pacing
	node.Ctl(t, "set_vm_memory_high_watermark", "0.0000001")
	time.Sleep(4 * time.Second) // the alarm's length before the probe: the fault itself
	// While the alarm is on, a publish must come back by its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	start := time.Now()
	err := p.Publish(ctx, event.Event{ID: "alarm-probe", Type: "ChaosEvent", Data: []byte(`{}`)})
	cancel()
	r.mu.Lock()
	r.known["alarm-probe"] = true
	r.mu.Unlock()
	r.check.Published("alarm-probe", err)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("publish under alarm: %v after %v; want DeadlineExceeded after ~1s", err, time.Since(start))
	}
	node.Ctl(t, "set_vm_memory_high_watermark", "0.4")
	time.Sleep(2 * time.Second) // load after the alarm, for settle to check: pacing
	close(stop)
	<-done
	rep := r.settle(url, 2*time.Minute)
	if rep.Failed == 0 {
		t.Error("no publish failed during a 4s alarm with 2s deadlines: the alarm did not bite")
	}
}

// Scenario 8: the broker is unreachable when both start; they retry and
// become ready when it appears.
func TestBrokerUnreachableAtStart(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	proxy := newToxi(t, url)
	proxy.down()
	r := newRig(t, url)
	w := r.worker(proxy.url(url), nil)
	p := r.publisher(proxy.url(url))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := p.Publish(ctx, event.Event{ID: "early", Type: "ChaosEvent", Data: []byte(`{}`)})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish with no broker = %v, want DeadlineExceeded", err)
	}
	if w.Consuming() || p.Connected() {
		t.Fatal("ready without a broker")
	}
	time.Sleep(2 * time.Second) // how long the broker is absent: the fault itself
	proxy.up(t)
	waitReady(t, w)
	r.publishLoop(p, "late", 200, 2, 20*time.Second, 0, nil)
	r.settle(url, time.Minute)
}

// Scenario 10: the publisher's connection is gone for a while. Publish fails by
// its deadline for what was not confirmed; after recovery nothing confirmed is
// lost.
func TestPublisherOutage(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	proxy := newToxi(t, url)
	r := newRig(t, url)
	w := r.worker(url, nil)
	waitReady(t, w)
	p := r.publisher(proxy.url(url))
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		r.publishLoop(p, "outage", 500000, 4, time.Second, 5*time.Millisecond, stop)
	}()
	time.Sleep(time.Second) // load before the fault: pacing
	proxy.down()
	time.Sleep(3 * time.Second) // the outage's length: the fault itself
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	start := time.Now()
	err := p.Publish(ctx, event.Event{ID: "outage-probe", Type: "ChaosEvent", Data: []byte(`{}`)})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("publish during outage: %v after %v; want DeadlineExceeded after ~1s", err, time.Since(start))
	}
	proxy.up(t)
	time.Sleep(2 * time.Second) // load after the outage, for settle to check: pacing
	close(stop)
	<-done
	rep := r.settle(url, time.Minute)
	if rep.Failed == 0 {
		t.Error("no publish failed during a 3s outage with 1s deadlines")
	}
}
