package amqp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/workertest"
	"github.com/eventfleet/eventfleet/retry"
)

// TestTopologyPassive_MissingExchangeIsNamed: with Topology passive and no
// domain exchange, neither binary declares it; both keep retrying and say
// which exchange is missing and how to make it.
func TestTopologyPassive_MissingExchangeIsNamed(t *testing.T) {
	t.Parallel()
	url, exchange, app := brokertest.URL(t), brokertest.Name(t), brokertest.Name(t)
	q := amqp.AppQueue(app)
	brokertest.Cleanup(t, []string{q, amqp.DeadQueue(q), amqp.UnroutedQueue(exchange)}, []string{exchange, amqp.HopsExchange(q)})
	fast := retry.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	// The text handler escapes the error's quotes.
	want := []string{`exchange \"` + exchange + `\" does not exist`, "TOPOLOGY=passive", "TOPOLOGY=declare"}

	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	w := workertest.Start(t, amqp.WorkerConfig{URL: url, Exchange: exchange, App: app, Topology: amqp.TopologyPassive,
		Retry: retry.Policy{Delays: []time.Duration{time.Second}}, Backoff: fast, Logger: log}, newRecorder(nil))
	deadline := time.Now().Add(10 * time.Second)
	for !containsAll(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker does not name the missing exchange:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w.Consuming() {
		t.Error("the worker consumes without the domain exchange")
	}

	plogs := &lockedBuffer{}
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: url, Exchange: exchange, Topology: amqp.TopologyPassive,
		Backoff: fast, Logger: slog.New(slog.NewTextHandler(plogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("T", "", 1)); err == nil {
		t.Fatal("published without the domain exchange")
	}
	if !containsAll(plogs.String(), want) {
		t.Errorf("the publisher log does not name the missing exchange:\n%s", plogs)
	}
	if d := brokertest.Depth(t, amqp.UnroutedQueue(exchange)); d != -1 {
		t.Errorf("a passive publisher declared %s", amqp.UnroutedQueue(exchange))
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestTopology_Validated(t *testing.T) {
	t.Parallel()
	if _, err := amqp.NewPublisher(amqp.PublisherConfig{Topology: "lazy"}); err == nil || !strings.Contains(err.Error(), "Topology") {
		t.Errorf("NewPublisher with Topology lazy: %v", err)
	}
	if _, err := amqp.NewWorker(amqp.WorkerConfig{App: "a", Topology: "lazy"}, newRecorder(nil)); err == nil || !strings.Contains(err.Error(), "passive") {
		t.Errorf("NewWorker with Topology lazy: %v", err)
	}
}

// TestPublisher_SendOnlyRefusesPublish: a SendOnly Publisher declares no
// unrouted queue, so Publish, which would keep an unroutable event's copy
// there, is refused at once; PublishMessage is what it is for.
func TestPublisher_SendOnlyRefusesPublish(t *testing.T) {
	t.Parallel()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{SendOnly: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(context.Background(), ev("CardAddedToLibraryEvent", "lib-1", 1))
	if !errors.Is(err, amqp.ErrInvalidConfig) || !strings.Contains(err.Error(), "PublishMessage") {
		t.Errorf("Publish on a SendOnly Publisher: %v, want ErrInvalidConfig naming PublishMessage", err)
	}
	if err := p.PublishBatch(context.Background(), []event.Event{ev("CardAddedToLibraryEvent", "lib-1", 2)}); !errors.Is(err, amqp.ErrInvalidConfig) {
		t.Errorf("PublishBatch on a SendOnly Publisher: %v, want ErrInvalidConfig", err)
	}
}
