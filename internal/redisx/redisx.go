// Package redisx holds what the Redis-backed implementations (cache, bus) share about
// Redis itself, so they read its failures the same way.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"plaza/internal/plaza"
)

// Err classifies err, returned by a Redis call made for what ("cache", "event bus"), in
// the plaza error vocabulary. A cancellation is kept as it is: the caller gave up and
// nothing is wrong with Redis. A reply error (wrong type, syntax) is our bug, so
// internal; anything else, a deadline or a refused connection, means Redis is
// unavailable, which health checks report and callers may retry.
func Err(err error, what string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if _, ok := errors.AsType[redis.Error](err); ok {
		return plaza.Wrap(plaza.EInternal, err, what+" failed")
	}
	return plaza.Wrap(plaza.EUnavailable, err, what+" unavailable")
}

// RouteLogs sends go-redis's own log lines (a pool that cannot dial, …), which it would
// otherwise print unstructured on stderr, to log as warnings. go-redis has one logger per
// process, so the last call wins.
func RouteLogs(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}
