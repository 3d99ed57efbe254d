package amqp

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/internal/proctest"
)

// The broker's refusals, as RabbitMQ 3.10.8 words them (measured).
func TestKeptGroupSize_ReadsTheQueuesOwnValue(t *testing.T) {
	t.Parallel()
	args := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum, QuorumInitialGroupSizeArg: int64(5)}
	refusal := func(reason string) error {
		return &amqp091.Error{Code: amqp091.PreconditionFailed, Reason: reason}
	}
	const pre = "PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' for queue 'q' in vhost 'v': "
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
		want any // the group size of the args returned; nil: none
	}{
		{"other value", refusal(pre + "received '5' but current is '3'"), true, int64(3)},
		{"queue has one, declare none", refusal(pre + "received none but current is the value '3' of type 'long'"), true, int64(3)},
		{"queue has none", refusal(pre + "received the value '5' of type 'long' but current is none"), true, nil},
		{"another argument", refusal("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q' in vhost 'v': received '5' but current is '3'"), false, nil},
		{"invalid value", refusal("PRECONDITION_FAILED - invalid arg 'x-quorum-initial-group-size' for queue 'q' in vhost 'v': {value_zero,0}"), false, nil},
		{"unreadable current value", refusal(pre + "received '5' but current is 'x'"), false, nil},
		{"not a broker error", errors.New("inequivalent arg 'x-quorum-initial-group-size'"), false, nil},
		{"no error", nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := keptGroupSize(tc.err, args)
			if ok != tc.ok {
				t.Fatalf("keptGroupSize(%v) ok = %v, want %v", tc.err, ok, tc.ok)
			}
			if !ok {
				return
			}
			if v, has := got[QuorumInitialGroupSizeArg]; v != tc.want || has != (tc.want != nil) {
				t.Errorf("group size = %v (present %v), want %v", v, has, tc.want)
			}
			if got[amqp091.QueueTypeArg] != amqp091.QueueTypeQuorum || args[QuorumInitialGroupSizeArg] != int64(5) {
				t.Errorf("other arguments changed, or the caller's table: %v, %v", got, args)
			}
		})
	}
}

func TestWithGroupSize_OnlyQuorumQueuesAndOnlyWhenSet(t *testing.T) {
	t.Parallel()
	quorum := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	classic := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeClassic}
	if got := withGroupSize(quorum, 3); got[QuorumInitialGroupSizeArg] != int64(3) {
		t.Errorf("quorum, 3: %v", got)
	}
	if _, has := quorum[QuorumInitialGroupSizeArg]; has {
		t.Errorf("withGroupSize changed its argument: %v", quorum)
	}
	if got := withGroupSize(quorum, 0); len(got) != 1 {
		t.Errorf("quorum, 0 (the broker's default): %v", got)
	}
	if got := withGroupSize(classic, 3); len(got) != 1 {
		t.Errorf("classic, 3: %v, want no group size (the broker refuses it on a classic queue)", got)
	}
}

func TestConfig_QuorumInitialGroupSizeValidated(t *testing.T) {
	t.Parallel()
	w := WorkerConfig{App: "a", QuorumInitialGroupSize: -1}.WithDefaults()
	var ce *ConfigError
	if err := w.Validate(); !errors.As(err, &ce) || ce.Field != "QuorumInitialGroupSize" {
		t.Errorf("WorkerConfig -1: %v, want a ConfigError for QuorumInitialGroupSize", err)
	}
	p := PublisherConfig{QuorumInitialGroupSize: -1}.WithDefaults()
	if err := p.Validate(); !errors.As(err, &ce) || ce.Field != "QuorumInitialGroupSize" {
		t.Errorf("PublisherConfig -1: %v, want a ConfigError for QuorumInitialGroupSize", err)
	}
	for _, n := range []int{0, 1, 3, 5, 7} {
		if err := (WorkerConfig{App: "a", QuorumInitialGroupSize: n}.WithDefaults()).Validate(); err != nil {
			t.Errorf("WorkerConfig %d: %v", n, err)
		}
	}
}

// groupSetup is an app's topology under unique names on the test broker,
// deleted at cleanup, with each of its quorum queues and the arguments
// eventfleet declares it with.
type groupSetup struct {
	conn   *amqp091.Connection
	topo   appTopology
	queues map[string]amqp091.Table
}

func newGroupSetup(t *testing.T) *groupSetup {
	t.Helper()
	s := newLimitSetup(t)
	exchange := brokertest.Name(t)
	topo := appTopology{exchange: exchange, queue: s.queue + ".app", queueType: QueueQuorum,
		deliveryLimit: DefaultDeliveryLimit, delays: []time.Duration{time.Second}}
	retryQ := RetryQueue(topo.queue, time.Second)
	brokertest.Cleanup(t, []string{topo.queue, retryQ, DeadQueue(topo.queue), UnroutedQueue(exchange)},
		[]string{exchange, topo.hops(), UnroutedQueue(exchange)})
	limit := limitArgs(serverVersion(s.conn).UnlimitedDeliveryLimit())
	return &groupSetup{conn: s.conn, topo: topo, queues: map[string]amqp091.Table{
		topo.queue:              topo.mainArgs(topo.hops()),
		retryQ:                  topo.retryArgs(time.Second, topo.hops()),
		DeadQueue(topo.queue):   limit,
		UnroutedQueue(exchange): limit,
	}}
}

// declare declares the topology as a Worker does, with group size n.
func (s *groupSetup) declare(t *testing.T, n int) declared {
	t.Helper()
	topo := s.topo
	topo.groupSize = n
	found, err := topo.declare(s.conn)
	if err != nil {
		t.Fatalf("declare with group size %d: %v", n, err)
	}
	return found
}

// groupSize reports the group size queue q was created with (0: none): a
// re-declare with its arguments and that size succeeds, with any other
// the broker names the argument.
func (s *groupSetup) groupSize(t *testing.T, q string) int {
	t.Helper()
	ch, err := s.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	probe := maps.Clone(s.queues[q])
	probe[QuorumInitialGroupSizeArg] = int64(99) // withGroupSize would leave a classic queue's alone
	err = declareRaw(ch, q, probe)
	if err == nil {
		_ = ch.Close()
		return 99
	}
	kept, ok := keptGroupSize(err, s.queues[q])
	if !ok {
		t.Fatalf("probe %q: %v", q, err)
	}
	n, _ := kept[QuorumInitialGroupSizeArg].(int64)
	return int(n)
}

func (s *groupSetup) wantSizes(t *testing.T, want int) {
	t.Helper()
	for q := range s.queues {
		if got := s.groupSize(t, q); got != want {
			t.Errorf("%q has x-quorum-initial-group-size %d, want %d (0: none)", q, got, want)
		}
	}
}

// Every quorum queue a Worker creates gets the configured group size; 3 is
// accepted on a single node (the broker caps it at the cluster's size).
func TestDeclare_QuorumInitialGroupSizeOnNewQueues(t *testing.T) {
	for _, n := range []int{0, 3} {
		s := newGroupSetup(t)
		if found := s.declare(t, n); len(found.keptSize) > 0 {
			t.Errorf("group size %d, new queues: kept %v, want none", n, found.keptSize)
		}
		s.wantSizes(t, n)
	}
}

// A classic app queue gets no group size: the broker refuses to create a
// classic queue with the argument ("invalid arg ... of queue type
// rabbit_classic_queue", measured on 3.10.8; a re-declare of one that
// exists ignores it), so the declare succeeding shows none was passed. Its
// delay and dead-letter queues get it.
func TestDeclare_QuorumInitialGroupSizeNotOnAClassicQueue(t *testing.T) {
	s := newGroupSetup(t)
	s.topo.queueType = QueueClassic
	delete(s.queues, s.topo.queue)
	s.declare(t, 3)
	s.wantSizes(t, 3)
}

// Upgrade safety: the broker refuses a re-declare with another group size
// (or with one where the queue has none) with 406, so changing the setting
// must leave existing queues as they are, and a Worker still connects.
func TestDeclare_QuorumInitialGroupSizeExistingQueuesKeepTheirs(t *testing.T) {
	for _, tc := range []struct {
		name          string
		created, then int
	}{
		{"created by an earlier version without, then 3", 0, 3},
		{"created with 3, then unset", 3, 0},
		{"created with 3, then 5", 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newGroupSetup(t)
			s.declare(t, tc.created)
			found := s.declare(t, tc.then)
			s.wantSizes(t, tc.created)
			var want []string
			for q := range s.queues {
				want = append(want, q)
			}
			got := slices.Clone(found.keptSize)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("kept %v, want every queue %v", got, want)
			}
		})
	}
}

// Any other difference is still reported: a queue kept with its own group
// size is checked for the rest of its arguments.
func TestDeclare_QuorumInitialGroupSizeOtherMismatchStillFails(t *testing.T) {
	s := newGroupSetup(t)
	s.declare(t, 3)
	s.topo.deliveryLimit = DefaultDeliveryLimit + 1
	s.topo.groupSize = 0
	_, err := s.topo.declare(s.conn)
	if !errors.Is(err, ErrTopologyMismatch) || !strings.Contains(err.Error(), "x-delivery-limit") {
		t.Errorf("declare with another delivery limit and group size = %v, want ErrTopologyMismatch naming x-delivery-limit", err)
	}
}

// A Publisher whose unrouted queue exists with another group size keeps it,
// publishes, and says so once (an operator who set QUORUM_INITIAL_GROUP_SIZE
// learns why the queue did not change), as a Worker says it of its queues.
func TestPublisher_QuorumInitialGroupSizeKeptUnroutedQueueLogged(t *testing.T) {
	s := newGroupSetup(t)
	s.declare(t, 0)          // an earlier version's queues, without the argument
	var logs proctest.Buffer // written by the Publisher's goroutines while the test reads
	p, err := NewPublisher(PublisherConfig{URL: brokertest.URL(t), Exchange: s.topo.exchange, QuorumInitialGroupSize: 3,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	if err := p.Publish(ctx, event.Event{Type: "GroupSizeKeptEvent"}); err != nil {
		t.Fatalf("publish with the unrouted queue kept: %v", err)
	}
	if got := s.groupSize(t, UnroutedQueue(s.topo.exchange)); got != 0 {
		t.Errorf("unrouted queue has group size %d, want its own (none)", got)
	}
	out := logs.String()
	if n := strings.Count(out, "keep their replicas"); n != 1 || !strings.Contains(out, UnroutedQueue(s.topo.exchange)) {
		t.Errorf("log says the queue was kept %d times (want 1, naming %s):\n%s", n, UnroutedQueue(s.topo.exchange), out)
	}
}
