package amqp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// How many nodes of a cluster hold a replica of each quorum queue
// eventfleet declares: the app's queue when it is a quorum queue, its delay
// queues, its dead-letter queue and the exchange's unrouted queue.
//
// Without the argument the broker chooses: RabbitMQ 3.9 and later take
// its setting quorum_cluster_size (3 unless an operator changed it), capped
// at the number of cluster nodes, so a three-node cluster replicates every
// queue on all three and a single node holds its one replica; 3.8 used
// every node (measured on a two-node 3.10.8 cluster: none gave 2 members,
// 1 gave 1, 3 gave 2). That is the default here too (QuorumInitialGroupSize 0): it
// is what RabbitMQ recommends, and it leaves existing queues as they are.
//
// The argument is fixed when a queue is created; a declare with another
// value, or with it where the queue has none (or the reverse), is refused
// with 406 PRECONDITION_FAILED (measured on 3.10.8). A queue that exists
// keeps the replicas it has: declareGroupSized declares it again with the
// value it was created with, so changing the setting never breaks a
// running deployment; it applies to queues created from then on. Replicas
// of an existing queue are changed with rabbitmq-queues grow/shrink
// (docs/cluster.md).

// QuorumInitialGroupSizeArg is the quorum queue argument for the number of
// replicas a new queue gets.
const QuorumInitialGroupSizeArg = "x-quorum-initial-group-size"

// validateGroupSize checks a QuorumInitialGroupSize field: 0 is the
// broker's default, and the broker itself refuses 0 and negative values
// ("invalid arg": value_zero, value_negative).
func validateGroupSize(n int) error {
	if n < 0 {
		return configError("QuorumInitialGroupSize", n,
			"must be 0 (the broker's default: 3 replicas, or as many as the cluster has nodes when fewer) or a number of replicas")
	}
	return nil
}

// withGroupSize returns quorum queue args with the initial group size n,
// or args unchanged when n is 0 (the broker's default) or the queue is not
// a quorum queue (a classic app queue).
func withGroupSize(args amqp091.Table, n int) amqp091.Table {
	if n == 0 || args[amqp091.QueueTypeArg] != amqp091.QueueTypeQuorum {
		return args
	}
	out := maps.Clone(args)
	out[QuorumInitialGroupSizeArg] = int64(n)
	return out
}

// currentGroupSize matches the end of the broker's 406 for the argument:
// "... received '1' but current is '3'", "... received none but current is
// the value '3' of type 'long'", "... received the value '3' of type
// 'long' but current is none" (RabbitMQ 3.10.8).
var currentGroupSize = regexp.MustCompile(`but current is (none|the value '(\d+)' of type '[a-z]+'|'(\d+)')$`)

// keptGroupSize reports whether err refuses args because the queue exists
// with another initial group size, or without one, and returns args with
// the queue's own: declared with those, the queue is accepted as it is.
func keptGroupSize(err error, args amqp091.Table) (amqp091.Table, bool) {
	var aerr *amqp091.Error
	if !inequivalent(err, QuorumInitialGroupSizeArg) || !errors.As(err, &aerr) {
		return nil, false
	}
	m := currentGroupSize.FindStringSubmatch(aerr.Reason)
	if m == nil {
		return nil, false
	}
	out := maps.Clone(args)
	if m[1] == "none" {
		delete(out, QuorumInitialGroupSizeArg)
		return out, true
	}
	v := m[2] + m[3]
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		return nil, false
	}
	out[QuorumInitialGroupSizeArg] = n
	return out, true
}

// declareGroupSized declares queue q with args and d's initial group size
// on d.ch or, when q exists with another group size, again on a new
// channel with the one q has (the refusal closed the channel); such queues
// are listed in d.keptSize.
func (d *declarer) declareGroupSized(q string, args amqp091.Table) error {
	args = withGroupSize(args, d.groupSize)
	err := declareRaw(d.ch, q, args)
	kept, ok := keptGroupSize(err, args)
	if !ok {
		return err
	}
	if d.ch, err = d.conn.Channel(); err != nil {
		return fmt.Errorf("declare queue %q again with its own %s: %w", q, QuorumInitialGroupSizeArg, err)
	}
	if err := declareRaw(d.ch, q, kept); err != nil {
		return err
	}
	if !slices.Contains(d.keptSize, q) {
		d.keptSize = append(d.keptSize, q)
	}
	return nil
}

// logKeptGroupSize says which queues kept their own initial group size
// against the configured n: logged once by a Worker and by a Publisher.
func logKeptGroupSize(log *slog.Logger, queues []string, n int) {
	log.Info("queues that exist with another initial group size than QUORUM_INITIAL_GROUP_SIZE keep their replicas; "+
		"the setting applies to new queues (rabbitmq-queues grow/shrink changes existing ones, docs/cluster.md)",
		"queues", queues, "quorum_initial_group_size", n)
}
