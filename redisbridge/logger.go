package redisbridge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own log lines (pool dial failures, dropped
// connections), which it writes to stderr in its own format, to log at
// debug level: the Bridge already logs each failure it acts on. go-redis's
// logger is process-wide, so this is for a main, not a library.
func SetLogger(log *slog.Logger) { redis.SetLogger(goRedisLogger{log}) }

type goRedisLogger struct{ log *slog.Logger }

func (l goRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "from", "go-redis")
}
