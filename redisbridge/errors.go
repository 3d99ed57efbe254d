package redisbridge

import "errors"

// Errors of this package. Test with errors.Is.
var (
	// ErrInvalidConfig: a Config field is refused.
	ErrInvalidConfig = errors.New("redisbridge: invalid configuration")
	// ErrRefused: Redis refused the bridge's credentials or commands
	// (WRONGPASS, NOAUTH, NOPERM): retrying cannot fix it, the bridge stops.
	ErrRefused = errors.New("redisbridge: refused by Redis")
)
