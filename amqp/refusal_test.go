package amqp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

const wrongPassword = "Wr0ngPassw0rd"

// Dial names a wrong password and an unknown vhost, without the password.
func TestDial_RefusalsNamed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		url  string
		want error
		says string
	}{
		{"wrong password", brokertest.URLWith(t, wrongPassword, ""), amqp.ErrAccessRefused, "access refused"},
		{"unknown vhost", brokertest.URLWith(t, "", "no-such-vhost-"+brokertest.Name(t)), amqp.ErrVhostNotFound, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			conn, err := amqp.Dial(ctx, tc.url, "refusal-test")
			if err == nil {
				_ = conn.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, tc.want) || !amqp.IsRefusal(err) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("dial = %v; want %v saying %q", err, tc.want, tc.says)
			}
			if strings.Contains(err.Error(), wrongPassword) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// attempts records when a connection loop logged a failed attempt.
type attempts struct {
	slog.Handler
	msg string
	mu  sync.Mutex
	at  []time.Time
}

func (a *attempts) Handle(ctx context.Context, r slog.Record) error {
	a.note(r)
	return a.Handler.Handle(ctx, r)
}

// note records r's time when it is the attempt line.
func (a *attempts) note(r slog.Record) {
	if r.Message == a.msg {
		a.mu.Lock()
		a.at = append(a.at, r.Time)
		a.mu.Unlock()
	}
}

func (a *attempts) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attemptsView{attempts: a, h: a.Handler.WithAttrs(attrs)}
}

func (a *attempts) times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at...)
}

// attemptsView is a With'd logger that still records into its attempts.
type attemptsView struct {
	*attempts
	h slog.Handler
}

func (v *attemptsView) Handle(ctx context.Context, r slog.Record) error {
	v.note(r)
	return v.h.Handle(ctx, r)
}

func (v *attemptsView) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attemptsView{attempts: v.attempts, h: v.h.WithAttrs(attrs)}
}

// A Publisher with a wrong password keeps retrying, but with its backoff
// (no spinning), and says why in LastError.
func TestPublisher_WrongPasswordBacksOff(t *testing.T) {
	t.Parallel()
	rec := &attempts{Handler: testLogger(t).Handler(), msg: "broker connection failed; retrying"}
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URLWith(t, wrongPassword, ""), Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	brokertest.Eventually(t, 15*time.Second, "3 failed attempts", func() bool { return len(rec.times()) >= 3 })
	at := rec.times()
	for i := 1; i < len(at); i++ {
		// The default schedule waits at least its minimum, 100ms.
		if gap := at[i].Sub(at[i-1]); gap < 90*time.Millisecond {
			t.Errorf("attempt %d came %v after the one before: no backoff", i+1, gap)
		}
	}
	last := p.LastError()
	if !errors.Is(last, amqp.ErrAccessRefused) || strings.Contains(last.Error(), wrongPassword) {
		t.Fatalf("LastError = %v; want ErrAccessRefused without the password", last)
	}
	select {
	case <-p.Done():
		t.Fatalf("the publisher stopped (%v); it should keep retrying", p.Err())
	default:
	}
}

// With StopOnRefusal (the CLIs), a refused connection stops the Publisher
// at once with the cause, and a waiting Publish returns.
func TestPublisher_StopOnRefusal(t *testing.T) {
	t.Parallel()
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URLWith(t, wrongPassword, ""),
		StopOnRefusal: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the publisher did not stop on a refused connection")
	}
	if err := p.Err(); !errors.Is(err, amqp.ErrAccessRefused) {
		t.Fatalf("Err = %v; want ErrAccessRefused", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Publish(ctx, ev("Refused", "", 1)); !errors.Is(err, amqp.ErrAccessRefused) {
		t.Fatalf("Publish after the refusal = %v; want ErrAccessRefused", err)
	}
}

// A Worker on an unknown vhost keeps retrying and says why in LastError.
func TestWorker_UnknownVhostNamed(t *testing.T) {
	t.Parallel()
	w, err := amqp.NewWorker(amqp.WorkerConfig{URL: brokertest.URLWith(t, "", "no-such-vhost-"+brokertest.Name(t)),
		App: brokertest.Name(t), Logger: testLogger(t)}, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop(context.Background()) }()
	brokertest.Eventually(t, 15*time.Second, "LastError names the vhost", func() bool {
		return errors.Is(w.LastError(), amqp.ErrVhostNotFound)
	})
	if w.Consuming() {
		t.Fatal("consuming on a vhost that does not exist")
	}
}

// A broker address that never answers the handshake is named in LastError
// as ErrHandshakeTimeout, and retried.
func TestPublisher_SilentBrokerNamedInLastError(t *testing.T) {
	t.Parallel()
	p0 := silentPeer(t, nil)
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: "amqp://guest:guest@" + p0.addr + "/?connection_timeout=200",
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	brokertest.Eventually(t, 15*time.Second, "LastError names the handshake timeout", func() bool {
		return errors.Is(p.LastError(), amqp.ErrHandshakeTimeout)
	})
	if !strings.Contains(p.LastError().Error(), "AMQP handshake: no answer within 200ms") {
		t.Errorf("LastError = %v", p.LastError())
	}
}
