package redisfanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisfanout"
	"github.com/eventfleet/eventfleet/retry"
)

// A psubscribe client gets each event on <prefix>:<type> with the event's
// data as the body, byte for byte; Handle returns only after Redis answered.
func TestHandler_PublishesDataToTheTypesChannel(t *testing.T) {
	t.Parallel()
	prefix := "t-" + event.NewID()
	ps := subscriber(t, prefix+":*")
	m := metrics.New()
	h := newHandler(t, redisfanout.Config{URL: redistest.URL(t), Channel: prefix + ":{type}", Metrics: m})
	if err := h.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	bodies := []string{
		`{"cardId":7, "aggregateId":"lib-1"}`, // spacing kept: sent as it came
		`{"card":8}`,                          // no aggregateId: none added
		`[1,2]`,
		``,
	}
	for i, b := range bodies {
		ev := event.Event{ID: "ev-" + strconv.Itoa(i), Type: "CardAdded" + strconv.Itoa(i), AggregateID: "lib-1", Data: json.RawMessage(b)}
		if err := h.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle %s: %v", ev.ID, err)
		}
		msg := next(t, ps, 5*time.Second)
		if want := prefix + ":CardAdded" + strconv.Itoa(i); msg.Channel != want || msg.Pattern != prefix+":*" {
			t.Errorf("event %d on channel %q (pattern %q), want %q", i, msg.Channel, msg.Pattern, want)
		}
		if msg.Payload != b {
			t.Errorf("event %d: body %q, want %q", i, msg.Payload, b)
		}
	}
	// Nobody listens to other-prefix channels: published, unheard.
	h2 := newHandler(t, redisfanout.Config{URL: redistest.URL(t), Channel: "t-" + event.NewID() + ":{type}", Metrics: m})
	if err := h2.Handle(context.Background(), event.Event{ID: "x", Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"eventfleet_redis_fanout_published_total 5", "eventfleet_redis_fanout_unheard_total 1"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A Redis that refuses the connection fails Handle at once with a
// retryable error that names the host and hides the password.
func TestHandler_RedisRefusedIsARetryableError(t *testing.T) {
	t.Parallel()
	url := "redis://:s3cret@127.0.0.1:" + strconv.Itoa(brokertest.FreePort(t)) + "/0"
	h := newHandler(t, redisfanout.Config{URL: url, Timeout: 2 * time.Second})
	start := time.Now()
	err := h.Handle(context.Background(), event.Event{ID: "1", Type: "T", Data: json.RawMessage(`{}`)})
	if err == nil {
		t.Fatal("Handle succeeded with no Redis")
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q: want the refusal and the host, not the password", err)
	}
	if retry.IsPermanent(err) {
		t.Errorf("error %q is permanent: the worker would dead-letter at once", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Handle took %v against a refused port", took)
	}
	if err := h.Ping(context.Background()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Ping: %v, want an error without the password", err)
	}
}

// A Redis that accepts the connection and never answers fails Handle after
// Timeout, not after go-redis's own read timeouts and retries.
func TestHandler_SilentRedisTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	const timeout = 300 * time.Millisecond
	h := newHandler(t, redisfanout.Config{URL: "redis://" + ln.Addr().String() + "/0", Timeout: timeout})
	start := time.Now()
	err = h.Handle(context.Background(), event.Event{ID: "1", Type: "T", Data: json.RawMessage(`{}`)})
	took := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Handle: %v, want a timeout", err)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("Handle took %v, want about %v", took, timeout)
	}
}

// An event the relay took from the very channel HANDLER=redis would
// publish it to is not published again (the two would feed each other
// without end with the default settings); one from elsewhere is.
func TestHandler_DoesNotEchoWhatTheRelayTookFromTheChannel(t *testing.T) {
	t.Parallel()
	prefix := "t-" + event.NewID()
	ps := subscriber(t, prefix+":*")
	m := metrics.New()
	h := newHandler(t, redisfanout.Config{URL: redistest.URL(t), Channel: prefix + ":{type}", Metrics: m})
	echo := event.Event{ID: "echo", Type: "CardAdded", Data: json.RawMessage(`{"n":1}`),
		Headers: map[string]any{amqp.HeaderBridgedFrom: "redis:" + prefix + ":CardAdded"}}
	other := event.Event{ID: "other", Type: "CardAdded", Data: json.RawMessage(`{"n":2}`),
		Headers: map[string]any{amqp.HeaderBridgedFrom: "redis-stream:events"}}
	for _, ev := range []event.Event{echo, other} {
		if err := h.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle %s: %v", ev.ID, err)
		}
	}
	// Redis delivers a connection's messages in order: the first one seen
	// is the second event's if the first was skipped.
	if msg := next(t, ps, 5*time.Second); msg.Payload != `{"n":2}` {
		t.Fatalf("subscriber got %q first, want the event bridged from a stream", msg.Payload)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"eventfleet_redis_fanout_published_total 1", "eventfleet_redis_fanout_echo_skipped_total 1"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
