package amqp

import (
	"errors"
	"fmt"
	"regexp"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/internal/lifecycle"
)

// Errors returned by this package. Test with errors.Is.
var (
	// ErrNacked: the broker refused to take responsibility for a message
	// (basic.nack). Publishing it again may succeed.
	ErrNacked = errors.New("amqp: broker nacked the message")
	// ErrUnroutedRefused: no queue is bound for the event's type and the
	// broker refused its copy in the unrouted queue, which is full (its
	// policy's bound, UnroutedPolicy). The error is ErrNacked too. Publishing
	// again fails the same way until an app binds the type or someone
	// empties the queue.
	ErrUnroutedRefused = errors.New("amqp: the unrouted queue refused the event")
	// ErrReturned: the broker could not route a message that had to be routed
	// (an internal hop to a queue that no longer exists, or a message sent
	// with PublishMessage, such as a replayed dead letter).
	ErrReturned = errors.New("amqp: broker returned the message as unroutable")
	// ErrClosed: the Publisher or Worker was stopped.
	ErrClosed = errors.New("amqp: closed")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("amqp: already started")
	// ErrTopologyMismatch: an exchange or queue exists with other arguments
	// than this configuration declares (the broker's 406 inequivalent arg).
	ErrTopologyMismatch = errors.New("amqp: existing topology does not match the configuration")
	// ErrTopologyMissing: an exchange or queue this configuration publishes
	// to or checks does not exist (the broker's 404 NOT_FOUND), and this
	// connection may not or will not declare it.
	ErrTopologyMissing = errors.New("amqp: topology missing on the broker")
	// ErrHeadersTooLarge: a message's headers would not fit in one AMQP frame.
	ErrHeadersTooLarge = errors.New("amqp: message headers too large")
	// ErrNotSent: PublishOrdered did not send an event because the event it
	// had to follow was not confirmed; nothing of it reached the broker.
	ErrNotSent = errors.New("amqp: not sent: the event it follows was not confirmed")
	// ErrInvalidConfig wraps every configuration validation error; a refused
	// PublisherConfig or WorkerConfig field is also a *ConfigError.
	ErrInvalidConfig = errors.New("amqp: invalid configuration")
)

// ConfigError is a PublisherConfig or WorkerConfig field that NewPublisher
// or NewWorker refuses. It names the field so that a caller that fills the
// Config from elsewhere (internal/config, from the environment) can name its
// own setting without checking the value again. errors.Is(err,
// ErrInvalidConfig) holds.
type ConfigError struct {
	// Field is the Go field, e.g. "Prefetch"; "Retry.Delays" and
	// "Retry.MaxAttempts" for the retry policy's.
	Field string
	// Value is the refused value as text (an URL with its password hidden).
	Value string
	// Reason says what is wrong and what is accepted, e.g. "must be 1..65535".
	Reason string
	// Err is the underlying error, if any: a *URLError for URL, a
	// retry.ErrInvalidPolicy for the retry policy's fields.
	Err error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %s: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func (e *ConfigError) Unwrap() error { return e.Err }

// configError is a *ConfigError for field, whose value is v.
func configError(field string, v any, reason string) error {
	return &ConfigError{Field: field, Value: fmt.Sprint(v), Reason: reason}
}

// urlConfigError is a *ConfigError for an URL validateURL refused.
func urlConfigError(field, u string, err error) error {
	ce := &ConfigError{Field: field, Value: RedactURL(u), Reason: err.Error(), Err: err}
	if ue := (*URLError)(nil); errors.As(err, &ue) {
		ce.Reason = ue.Problem
	}
	return ce
}

// tlsConfigError is the *ConfigError for TLS settings ValidateTLS refuses
// (Field "TLS.CAFile" etc.), or nil.
func tlsConfigError(u string, f TLSFiles) error {
	err := ValidateTLS(u, f)
	if te := (*TLSFileError)(nil); errors.As(err, &te) {
		return &ConfigError{Field: "TLS." + te.Field, Value: te.Value, Reason: te.Problem, Err: err}
	}
	return err
}

// errConnLost is internal: the session carrying a message died before the
// confirm arrived, so the caller publishes it again on the next session.
var errConnLost = errors.New("amqp: connection lost before the confirm")

// quorumArgs are the arguments that differ when QUEUE_TYPE or DELIVERY_LIMIT changed.
var quorumArgs = regexp.MustCompile(`x-queue-type|x-overflow|x-dead-letter-strategy|x-delivery-limit`)

var inequivalentArg = regexp.MustCompile(`inequivalent arg '([^']+)' for (queue|exchange) '([^']*)'`)

// declareError turns a broker error from declaring kind ("queue"/"exchange")
// name into an error a user can act on. A 406 inequivalent-arg answer becomes
// ErrTopologyMismatch naming the argument and the way out.
func declareError(kind, name string, err error) error {
	var aerr *amqp091.Error
	if errors.As(err, &aerr) && aerr.Code == amqp091.PreconditionFailed {
		arg := "an argument"
		if m := inequivalentArg.FindStringSubmatch(aerr.Reason); m != nil {
			arg = fmt.Sprintf("argument %q", m[1])
		}
		hint := "a queue's arguments are fixed when it is created: declare it with the settings it was created with, " +
			"or drain and delete it so it is declared anew"
		switch {
		case kind == "queue" && quorumArgs.MatchString(arg):
			hint = "the queue type and its quorum-only arguments cannot change in place: set QUEUE_TYPE (and DELIVERY_LIMIT) " +
				"back to what the existing queue was created with, or drain and delete the queue to switch"
		case kind == "exchange":
			hint = "eventfleet declares the exchange as a plain durable topic exchange without arguments; delete and re-create it, " +
				"or set an alternate exchange by policy instead of an argument"
		}
		return fmt.Errorf("%w: %s %q already exists with a different %s (broker: %s); %s",
			ErrTopologyMismatch, kind, name, arg, aerr.Reason, hint)
	}
	if errors.As(err, &aerr) && aerr.Code == amqp091.AccessRefused {
		return named(ErrAccessRefused, err, "%v: declare %s %q: %d %s (the user needs configure permission on it)",
			ErrAccessRefused, kind, name, aerr.Code, aerr.Reason)
	}
	return fmt.Errorf("declare %s %q: %w", kind, name, err)
}

// startError is Start's error for a Lifecycle that would not start.
func startError(err error) error {
	if errors.Is(err, lifecycle.ErrStarted) {
		return ErrAlreadyStarted
	}
	return ErrClosed
}

// isFatal reports errors that reconnecting cannot fix.
func isFatal(err error) bool {
	return errors.Is(err, ErrTopologyMismatch) || errors.Is(err, ErrInvalidConfig)
}
