package amqp

import (
	"encoding/json"
	"regexp"
	"strconv"
)

// The unrouted queue's bound. It is a policy, not a queue argument: adding
// x-max-length to the queue's declare would make the broker refuse the
// re-declare (406) on every broker where the queue already exists, and a
// policy applies to an existing queue at once, without a re-declare or a
// lost message. With overflow reject-publish the broker nacks a copy beyond
// the bound, so the publish of an unroutable event fails (ErrNacked) instead
// of filling the broker's disk, and nothing already kept is dropped.
const (
	// DefaultUnroutedMaxLength is the most messages the unrouted queue keeps:
	// about a day of one stray event a second, and a loud failure within
	// minutes for a flood or a type published before its app was deployed.
	DefaultUnroutedMaxLength = 100_000
	// DefaultUnroutedMaxBytes bounds the bodies the unrouted queue keeps
	// (256 MiB, the sum of message bodies; headers and the quorum log come
	// on top): 100,000 events of 2.7 KB, or 256 events of 1 MiB.
	DefaultUnroutedMaxBytes = 256 << 20
	// UnroutedPolicyPriority is above the 0 an operator's catch-all policy
	// usually has: only one policy applies to a queue, the highest priority.
	UnroutedPolicyPriority = 10
)

// UnroutedPolicy is the RabbitMQ policy that bounds one exchange's unrouted
// queue. An operator applies it once per broker (vhost) with rabbitmqctl
// (CtlArgs) as a user tagged policymaker or administrator; the Publisher
// needs no such rights.
type UnroutedPolicy struct {
	Name     string // the unrouted queue's name, e.g. "domain_events.unrouted"
	Pattern  string // matches that queue only, e.g. `^domain_events\.unrouted$`
	MaxLen   int64  // max-length
	MaxBytes int64  // max-length-bytes
	Priority int
}

// NewUnroutedPolicy is exchange's unrouted-queue policy with the default bound.
func NewUnroutedPolicy(exchange string) UnroutedPolicy {
	q := UnroutedQueue(exchange)
	return UnroutedPolicy{
		Name:     q,
		Pattern:  "^" + regexp.QuoteMeta(q) + "$",
		MaxLen:   DefaultUnroutedMaxLength,
		MaxBytes: DefaultUnroutedMaxBytes,
		Priority: UnroutedPolicyPriority,
	}
}

// Definition is the policy's JSON definition.
func (p UnroutedPolicy) Definition() string {
	b, _ := json.Marshal(map[string]any{ // keys come out sorted
		"max-length":       p.MaxLen,
		"max-length-bytes": p.MaxBytes,
		"overflow":         "reject-publish",
	})
	return string(b)
}

// CtlArgs are the arguments of `rabbitmqctl set_policy` for p (add -p VHOST
// for another vhost than /). Setting it again with the same values changes
// nothing.
func (p UnroutedPolicy) CtlArgs() []string {
	return []string{"set_policy", p.Name, p.Pattern, p.Definition(),
		"--apply-to", "queues", "--priority", strconv.Itoa(p.Priority)}
}
