package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/redistest"
)

// The HANDLER=redis tests run the worker against the real broker and the
// tests' Redis (internal/redistest), each on channels of its own prefix.

// psubscriber is the original design's subscriber: PSUBSCRIBE <prefix>:*
// on a fresh prefix, confirmed before it returns. REDIS_CHANNEL for the
// worker is <prefix>:{type}.
type psubscriber struct {
	prefix string
	c      *redis.Client
	ps     *redis.PubSub
}

func newPsubscriber(t *testing.T) *psubscriber {
	t.Helper()
	opt := redistest.Options(t)
	s := &psubscriber{prefix: "t-" + event.NewID()}
	opt.ClientName = s.prefix // for close to find it in CLIENT LIST
	c := redis.NewClient(opt)
	s.c = c
	s.ps = c.PSubscribe(context.Background(), s.prefix+":*")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.ps.Receive(ctx); err != nil {
		redistest.Unreachable(t, err)
	}
	t.Cleanup(func() { _ = s.ps.Close(); _ = c.Close() })
	return s
}

func (s *psubscriber) channel() string { return s.prefix + ":{type}" }

// close unsubscribes and waits until Redis has dropped the connection, so
// that what is published from then on reaches no one.
func (s *psubscriber) close(t *testing.T) {
	t.Helper()
	_ = s.ps.Close()
	c := redis.NewClient(redistest.Options(t))
	defer c.Close()
	brokertest.Eventually(t, 10*time.Second, "the subscriber's connection gone from CLIENT LIST", func() bool {
		list, err := c.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return !strings.Contains(list, "name="+s.prefix+" ")
	})
}

// next is the next message, failing t after timeout.
func (s *psubscriber) next(t *testing.T, timeout time.Duration) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		msg, err := s.ps.Receive(ctx)
		if err != nil {
			t.Fatalf("no message on %s:* within %v: %v", s.prefix, timeout, err)
		}
		if m, ok := msg.(*redis.Message); ok {
			return m
		}
	}
}

// redisHost is the host:port of the tests' Redis.
func redisHost(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestWorker_RedisHandlerReachesPsubscribers(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	sub := newPsubscriber(t)
	p := startWorker(t, a.env(t, "HANDLER=redis", "REDIS_URL="+redistest.URL(t), "REDIS_CHANNEL="+sub.channel()))
	p.waitConsuming()

	msgs := []message{
		{id: "ev-0", typ: cardAdded, aggregate: "lib-1", body: `{"cardId":"c-1", "aggregateId":"lib-1"}`},
		{id: "ev-1", typ: "LibraryRenamedEvent", aggregate: "lib-2", body: `{"name":"Moby"}`},
		{id: "ev-2", typ: cardAdded, body: `{"cardId":"c-3","aggregateId":"lib-3"}`},
	}
	publish(t, a.exchange, msgs...)
	got := map[string]string{} // body → channel
	for range msgs {
		m := sub.next(t, 30*time.Second)
		got[m.Payload] = m.Channel
	}
	for _, m := range msgs {
		if ch, ok := got[m.body]; !ok || ch != sub.prefix+":"+m.typ {
			t.Errorf("event %s: channel %q (received %v), want %s:%s with the body as published", m.id, ch, ok, sub.prefix, m.typ)
		}
	}
	waitDepth(t, a.queue, 0, 10*time.Second)
	base := "http://" + adminAddr(t, p)
	fanout := func() (published, unheard float64) {
		_, body := httpGet(t, base+"/metrics")
		published, _ = metricValue(body, "eventfleet_redis_fanout_published_total")
		unheard, _ = metricValue(body, "eventfleet_redis_fanout_unheard_total")
		return published, unheard
	}
	// Counted just after Redis answered, so just after the subscriber got it.
	brokertest.Eventually(t, 10*time.Second, "3 published, 0 unheard on /metrics", func() bool {
		pub, unheard := fanout()
		return pub == 3 && unheard == 0
	})
	// The subscriber gone, the next event reaches no one, and says so.
	sub.close(t)
	publish(t, a.exchange, message{id: "ev-3", typ: cardAdded, body: `{}`})
	brokertest.Eventually(t, 30*time.Second, "4 published, 1 unheard on /metrics", func() bool {
		pub, unheard := fanout()
		return pub == 4 && unheard == 1
	})
	p.stop(15 * time.Second)
	stderr := p.Stderr.String()
	if strings.Contains(stderr, "Redis does not answer") {
		t.Errorf("a WARN that Redis does not answer, with Redis up:\n%s", stderr)
	}
	for _, want := range []string{`"handler":"redis"`, `"redis":"` + redistest.URL(t) + `"`,
		`"redis_channel":"` + sub.channel() + `"`, `"redis_timeout":"5s"`, `"handled":4`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %s:\n%s", want, stderr)
		}
	}
	checkLogsAreJSON(t, p)
}

// While Redis refuses connections, and then while it accepts them and
// answers nothing (REDIS_TIMEOUT), the event is retried on RETRY_DELAYS'
// pace, not acked and not lost: it reaches the subscriber once Redis is
// back. The worker neither exits nor loops.
func TestWorker_RedisDownEventsAreRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	a := newApp(t, 100*time.Millisecond, 200*time.Millisecond)
	sub := newPsubscriber(t)
	proxy := brokertest.NewProxyTo(t, redisHost(t))
	proxy.SetRefuse(true)
	p := startWorker(t, a.env(t, "HANDLER=redis", "REDIS_URL=redis://"+proxy.Addr()+"/0", "REDIS_CHANNEL="+sub.channel(),
		"REDIS_TIMEOUT=300ms", "RETRY_DELAYS=100ms,200ms", "RETRY_MAX_ATTEMPTS=1000"))
	p.waitConsuming()

	for i, phase := range []struct {
		name        string
		break_, fix func()
		want        string // in the retried event's error
	}{
		{"refused", func() {}, func() { proxy.SetRefuse(false) }, "redisfanout: PUBLISH to"},
		{"silent", proxy.Partition, proxy.Heal, "timeout"},
	} {
		phase.break_()
		m := message{id: fmt.Sprintf("ev-%d", i), typ: cardAdded, body: fmt.Sprintf(`{"phase":%q}`, phase.name)}
		before := strings.Count(p.Stderr.String(), `"msg":"handler failed; retrying later"`)
		started := time.Now()
		publish(t, a.exchange, m)
		brokertest.Eventually(t, 30*time.Second, phase.name+": three retries", func() bool {
			if p.Exited() {
				t.Fatalf("%s: worker exited with %d while Redis is down", phase.name, p.Code())
			}
			return strings.Count(p.Stderr.String(), `"msg":"handler failed; retrying later"`)-before >= 3
		})
		retries := strings.Count(p.Stderr.String(), `"msg":"handler failed; retrying later"`) - before
		// Each attempt waits at least 100ms in a delay queue: no hot loop.
		if limit := int(time.Since(started)/(100*time.Millisecond)) + 1; retries > limit {
			t.Errorf("%s: %d retries in %v: faster than RETRY_DELAYS allows", phase.name, retries, time.Since(started))
		}
		if !strings.Contains(p.Stderr.String(), phase.want) {
			t.Errorf("%s: the retries do not say %q:\n%s", phase.name, phase.want, p.Stderr.String())
		}
		phase.fix()
		// The Redis answer may have been lost after the PUBLISH went out
		// (the silent phase): duplicates are allowed, loss is not.
		if got := sub.next(t, 30*time.Second); got.Payload != m.body || got.Channel != sub.prefix+":"+cardAdded {
			t.Fatalf("%s: got %q on %s, want %q on %s:%s", phase.name, got.Payload, got.Channel, m.body, sub.prefix, cardAdded)
		}
		for _, q := range []string{a.queue, a.queue + ".retry.100ms", a.queue + ".retry.200ms"} {
			waitDepth(t, q, 0, 30*time.Second)
		}
	}
	p.stop(15 * time.Second)
	if n := brokertest.Depth(t, a.dead); n != 0 {
		t.Errorf("%d events dead-lettered, want 0", n)
	}
	checkLogsAreJSON(t, p)
}

// Redis refusing the credentials is a handler failure like any other: the
// event is retried, then dead-lettered (kept, replayable), never acked;
// the password shows nowhere.
func TestWorker_RedisRefusesCredentialsEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	a := newApp(t, 100*time.Millisecond)
	const password = "s3cr3tpw"
	u, _ := url.Parse(redistest.URL(t))
	u.User = url.UserPassword("nosuchuser", password)
	p := startWorker(t, a.env(t, "HANDLER=redis", "REDIS_URL="+u.String(), "REDIS_CHANNEL=t-"+event.NewID()+":{type}",
		"RETRY_DELAYS=100ms", "RETRY_MAX_ATTEMPTS=3"))
	p.waitConsuming()
	publish(t, a.exchange, message{id: "ev-0", typ: cardAdded, body: `{}`})
	waitDepth(t, a.dead, 1, 30*time.Second)
	p.stop(15 * time.Second)
	d := deadLetters(t, a, 1)["ev-0"]
	if r := d.Headers[amqp.HeaderReason]; r != "exhausted" {
		t.Errorf("%s = %v, want exhausted (after 3 attempts)", amqp.HeaderReason, r)
	}
	if e, _ := d.Headers[amqp.HeaderLastError].(string); !strings.Contains(e, "WRONGPASS") || !strings.Contains(e, "redis://nosuchuser:xxxxx@") {
		t.Errorf("%s = %q, want Redis's refusal and the URL with its password hidden", amqp.HeaderLastError, e)
	}
	stderr := p.Stderr.String()
	if strings.Contains(stderr, password) || strings.Contains(fmt.Sprint(d.Headers), password) {
		t.Errorf("the Redis password shows in stderr or the dead letter:\n%s", stderr)
	}
	if n := strings.Count(stderr, `"msg":"handler failed; retrying later"`); n != 2 {
		t.Errorf("%d retries logged, want 2 (attempts 1 and 2 of 3)", n)
	}
	if !strings.Contains(stderr, "WRONGPASS") {
		t.Errorf("stderr does not say Redis refused the credentials:\n%s", stderr)
	}
	if !strings.Contains(stderr, `"msg":"Redis does not answer; events will be retried until it does"`) {
		t.Errorf("no WARN at start that Redis does not answer:\n%s", stderr)
	}
	checkLogsAreJSON(t, p)
}

// Bad REDIS_* values stop the worker at start, exit 2, naming the
// variable, the password hidden.
func TestWorker_RedisSettingsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, want string }{
		{"REDIS_URL=http://:s3cr3tpw@cache:6379/0", `invalid REDIS_URL="http://:xxxxx@cache:6379/0"`},
		{"REDIS_URL=redis://:s3cr3tpw@cache:port/0", `invalid REDIS_URL=`},
		{"REDIS_CHANNEL=events", `invalid REDIS_CHANNEL="events": must hold {type}`},
		{"REDIS_CHANNEL=events:{Type}", `invalid REDIS_CHANNEL="events:{Type}"`},
		{"REDIS_TIMEOUT=5", `invalid REDIS_TIMEOUT="5"`},
		{"REDIS_TIMEOUT=0s", `invalid REDIS_TIMEOUT="0s": must be positive`},
	} {
		p := startWorker(t, map[string]string{"APP_NAME": "redis-settings", "HANDLER": "redis", strings.SplitN(tc.env, "=", 2)[0]: strings.SplitN(tc.env, "=", 2)[1]})
		if code := p.wait(15 * time.Second); code != 2 {
			t.Errorf("%s: exit code %d, want 2", tc.env, code)
		}
		if stderr := p.Stderr.String(); !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "s3cr3tpw") {
			t.Errorf("%s: stderr %q, want %q and no password", tc.env, stderr, tc.want)
		}
	}
}
