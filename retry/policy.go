package retry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultDelays is the retry schedule used when none is configured.
var DefaultDelays = []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}

// DefaultMaxAttempts is the number of attempts, the first included, after which
// an event is dead-lettered.
const DefaultMaxAttempts = 5

// MinDelay is the shortest retry delay accepted. Shorter delays turn a failing
// handler into a hot loop through the broker.
const MinDelay = 10 * time.Millisecond

// ErrInvalidPolicy is wrapped by every Policy validation error.
var ErrInvalidPolicy = errors.New("invalid retry policy")

// Policy is a delayed-retry schedule.
type Policy struct {
	// Delays are the waits before attempt 2, 3, …; when attempts outnumber
	// delays the last delay repeats. Defaults to DefaultDelays (1s,10s,1m,5m).
	Delays []time.Duration
	// MaxAttempts is how many times an event is handed to a handler, the first
	// time included, before it is dead-lettered. 1 means never retry.
	// Defaults to DefaultMaxAttempts (5).
	MaxAttempts int
}

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	if len(p.Delays) == 0 {
		p.Delays = slices.Clone(DefaultDelays)
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	return p
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	if p.MaxAttempts < 1 {
		return fmt.Errorf("%w: max attempts must be at least 1, got %d", ErrInvalidPolicy, p.MaxAttempts)
	}
	for _, d := range p.Delays {
		if d < MinDelay {
			return fmt.Errorf("%w: delay %v is shorter than the minimum %v", ErrInvalidPolicy, d, MinDelay)
		}
		if d%time.Millisecond != 0 {
			return fmt.Errorf("%w: delay %v is not a whole number of milliseconds", ErrInvalidPolicy, d)
		}
	}
	return nil
}

// Next decides what happens after attempt number attempt (1 for the first)
// failed: the delay before the next attempt, or dead=true when the attempts are
// used up.
func (p Policy) Next(attempt int) (delay time.Duration, dead bool) {
	if attempt >= p.MaxAttempts || len(p.Delays) == 0 {
		return 0, true
	}
	i := max(attempt-1, 0)
	if i >= len(p.Delays) {
		i = len(p.Delays) - 1
	}
	return p.Delays[i], false
}

// Stages returns the distinct delays the policy can use, in order of first use.
// Each stage is one delay queue on the broker.
func (p Policy) Stages() []time.Duration {
	var out []time.Duration
	for a := 1; a < p.MaxAttempts; a++ {
		d, _ := p.Next(a)
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
		if a > len(p.Delays) {
			break // the last delay repeats from here on
		}
	}
	return out
}

// ParseDelays parses a comma-separated list of Go durations ("1s,10s,1m,5m").
func ParseDelays(s string) ([]time.Duration, error) {
	var out []time.Duration
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: empty entry in delay list %q", ErrInvalidPolicy, s)
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a duration (use Go syntax like 500ms, 10s, 5m)", ErrInvalidPolicy, part)
		}
		out = append(out, d)
	}
	return out, nil
}
