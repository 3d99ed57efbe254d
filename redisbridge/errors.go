package redisbridge

import (
	"errors"
	"fmt"
)

// Errors of this package. Test with errors.Is.
var (
	// ErrInvalidConfig: a Config field is refused; the error is a
	// *ConfigError naming the field.
	ErrInvalidConfig = errors.New("redisbridge: invalid configuration")
	// ErrRefused: Redis refused the bridge's credentials or commands
	// (WRONGPASS, NOAUTH, NOPERM): retrying cannot fix it, the bridge stops.
	ErrRefused = errors.New("redisbridge: refused by Redis")
)

// ConfigError is a Config field New refuses. It names the field so that a
// caller filling Config from the environment (internal/config) can name its
// own variable instead.
type ConfigError struct {
	Field  string // the Go field, e.g. "ClaimIdle"
	Value  string // the refused value (a URL with its password hidden)
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
