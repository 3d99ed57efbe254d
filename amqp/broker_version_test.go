package amqp

import (
	"errors"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

func TestParseBrokerVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		product, version    string
		major, minor, patch int
		known, unlimited    bool
	}{
		{"RabbitMQ", "3.10.8", 3, 10, 8, true, false},
		{"RabbitMQ", "3.13.7", 3, 13, 7, true, false},
		{"RabbitMQ", "4.0.5", 4, 0, 5, true, true},
		{"RabbitMQ", "4.3.0", 4, 3, 0, true, true},
		{"RabbitMQ", "4.1.0-rc.1", 4, 1, 0, true, true},
		{"RabbitMQ", "4.2.1+2.g1a2b3c", 4, 2, 1, true, true},
		{"RabbitMQ", "5.0", 5, 0, 0, true, true},
		{"RabbitMQ", "10.2.3", 10, 2, 3, true, true},
		// Another product's numbers mean something else: no argument.
		{"LavinMQ", "4.0.0", 4, 0, 0, true, false},
		{"", "4.0.5", 4, 0, 5, true, false},
		// Garbage: nothing assumed.
		{"RabbitMQ", "", 0, 0, 0, false, false},
		{"RabbitMQ", "4", 0, 0, 0, false, false},
		{"RabbitMQ", "v4.0.5", 0, 0, 0, false, false},
		{"RabbitMQ", "4.0.5.1", 0, 0, 0, false, false},
		{"RabbitMQ", "4..5", 0, 0, 0, false, false},
		{"RabbitMQ", "4.x.5", 0, 0, 0, false, false},
		{"RabbitMQ", "-4.0.5", 0, 0, 0, false, false},
		{"RabbitMQ", "+4.0.5", 0, 0, 0, false, false},
		{"RabbitMQ", "04.0.5", 0, 0, 0, false, false},
		{"RabbitMQ", "4.0.5 ", 0, 0, 0, false, false},
		{"RabbitMQ", "four", 0, 0, 0, false, false},
	} {
		t.Run(tc.product+"/"+tc.version, func(t *testing.T) {
			t.Parallel()
			v := ParseBrokerVersion(tc.product, tc.version)
			if v.Known != tc.known || v.Major != tc.major || v.Minor != tc.minor || v.Patch != tc.patch {
				t.Errorf("ParseBrokerVersion(%q, %q) = %+v, want %d.%d.%d known=%v",
					tc.product, tc.version, v, tc.major, tc.minor, tc.patch, tc.known)
			}
			if got := v.UnlimitedDeliveryLimit(); got != tc.unlimited {
				t.Errorf("UnlimitedDeliveryLimit() of %q %q = %v, want %v", tc.product, tc.version, got, tc.unlimited)
			}
		})
	}
}

// limitSetup is a connection to the test broker, a unique queue name
// deleted at cleanup, and a probe of that queue's x-delivery-limit.
type limitSetup struct {
	conn  *amqp091.Connection
	queue string
}

func newLimitSetup(t *testing.T) *limitSetup {
	t.Helper()
	conn, err := amqp091.Dial(brokertest.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	q := brokertest.Name(t)
	brokertest.Cleanup(t, []string{q}, nil)
	return &limitSetup{conn: conn, queue: q}
}

// create declares the queue directly, as an older eventfleet (plain) or a
// 4.x declare (unlimited) left it.
func (s *limitSetup) create(t *testing.T, unlimited bool) {
	t.Helper()
	ch, err := s.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := declareRaw(ch, s.queue, limitArgs(unlimited)); err != nil {
		t.Fatalf("create %q: %v", s.queue, err)
	}
}

func limitArgs(unlimited bool) amqp091.Table {
	args := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	if unlimited {
		args["x-delivery-limit"] = int64(-1)
	}
	return args
}

// hasUnlimited reports which arguments the queue has: a re-declare with
// exactly one of the two variants succeeds, the other is refused (406).
func (s *limitSetup) hasUnlimited(t *testing.T) bool {
	t.Helper()
	var ok [2]bool
	for i, unlimited := range []bool{false, true} {
		ch, err := s.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = declareRaw(ch, s.queue, limitArgs(unlimited))
		switch {
		case err == nil:
			ok[i] = true
			_ = ch.Close()
		case !inequivalent(err, "x-delivery-limit"):
			t.Fatalf("re-declare %q (unlimited=%v): %v", s.queue, unlimited, err)
		}
	}
	if ok[0] == ok[1] {
		t.Fatalf("queue %q: plain declare ok=%v, unlimited declare ok=%v; want exactly one", s.queue, ok[0], ok[1])
	}
	return ok[1]
}

var (
	v3108 = ParseBrokerVersion("RabbitMQ", "3.10.8")
	v405  = ParseBrokerVersion("RabbitMQ", "4.0.5")
)

// The decision is taken from the version passed in, so both branches run on
// the 3.10.8 broker here; only declares, no message is ever given back (on
// 3.x a queue with -1 drops every returned message).
func TestDeclareUnlimited_NewAndExistingQueues(t *testing.T) {
	for _, tc := range []struct {
		name          string
		existing      *bool // nil: the queue does not exist yet
		version       BrokerVersion
		wantUnlimited bool
	}{
		{"new queue, 3.x: declared as always, without a limit", nil, v3108, false},
		{"new queue, 4.x: declared with x-delivery-limit -1", nil, v405, true},
		{"existing plain queue, 3.x: unchanged", ptr(false), v3108, false},
		{"existing plain queue, 4.x: kept as it was (406 avoided)", ptr(false), v405, false},
		{"existing unlimited queue, 4.x: unchanged", ptr(true), v405, true},
		{"existing unlimited queue, unknown version: kept (406 avoided)", ptr(true), ParseBrokerVersion("RabbitMQ", "?"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLimitSetup(t)
			if tc.existing != nil {
				s.create(t, *tc.existing)
			}
			d := declarer{conn: s.conn}
			err := d.declareUnlimited(s.queue, tc.version)
			d.close()
			if err != nil {
				t.Fatalf("declareUnlimited: %v", err)
			}
			if got := s.hasUnlimited(t); got != tc.wantUnlimited {
				t.Errorf("queue has x-delivery-limit -1: %v, want %v", got, tc.wantUnlimited)
			}
		})
	}
}

// Any other difference is still reported, naming the argument.
func TestDeclareUnlimited_OtherMismatchStillFails(t *testing.T) {
	s := newLimitSetup(t)
	ch, err := s.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := declareRaw(ch, s.queue, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeClassic}); err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
	for _, v := range []BrokerVersion{v3108, v405} {
		d := declarer{conn: s.conn}
		err := d.declareUnlimited(s.queue, v)
		d.close()
		if !errors.Is(err, ErrTopologyMismatch) || !strings.Contains(err.Error(), "x-queue-type") {
			t.Errorf("version %d.%d: declareUnlimited over a classic queue = %v, want ErrTopologyMismatch naming x-queue-type", v.Major, v.Minor, err)
		}
	}
}

// On the broker the tests run against, the real declare paths (a worker's
// own topology, and the domain part a publisher declares too) leave the
// dead-letter and unrouted queues as this broker's version calls for: on
// 3.x exactly what earlier versions declared, so nothing changes there.
func TestDeclare_DeadAndUnroutedQueuesOnThisBroker(t *testing.T) {
	s := newLimitSetup(t)
	v := serverVersion(s.conn)
	t.Logf("broker %s %d.%d.%d (known=%v): unlimited=%v", v.Product, v.Major, v.Minor, v.Patch, v.Known, v.UnlimitedDeliveryLimit())
	exchange := brokertest.Name(t)
	topo := appTopology{exchange: exchange, queue: s.queue + ".app", queueType: QueueQuorum, deliveryLimit: DefaultDeliveryLimit}
	brokertest.Cleanup(t, []string{topo.queue, DeadQueue(topo.queue), UnroutedQueue(exchange)},
		[]string{exchange, topo.hops(), UnroutedQueue(exchange)})
	for round := 1; round <= 2; round++ { // the second time, every queue exists
		if _, err := topo.declare(s.conn); err != nil {
			t.Fatalf("declare, round %d: %v", round, err)
		}
		ch, err := s.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = declareDomain(s.conn, ch, exchange, 0)
		_ = ch.Close()
		if err != nil {
			t.Fatalf("declareDomain, round %d: %v", round, err)
		}
		for _, q := range []string{DeadQueue(topo.queue), UnroutedQueue(exchange)} {
			if got := (&limitSetup{conn: s.conn, queue: q}).hasUnlimited(t); got != v.UnlimitedDeliveryLimit() {
				t.Errorf("round %d: %q has x-delivery-limit -1: %v, want %v", round, q, got, v.UnlimitedDeliveryLimit())
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
