package gateway

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"plaza/internal/ratelimit"
)

// limitCallTimeout bounds one Redis call of the limiter: a slow Redis costs a request at
// most this much before the local limiter decides.
const limitCallTimeout = 100 * time.Millisecond

// limiter applies rate limits shared by every gateway through Redis (GCRA, go-redis's
// redis_rate), and falls back to a token bucket of this gateway's own (internal/ratelimit)
// while Redis cannot answer: limits stay on, but each gateway then counts alone, which it
// says in the log, in plaza_gateway_rate_limit_local (1 while it lasts) and in
// plaza_gateway_rate_limit_fallbacks_total (a fallback shorter than a scrape interval).
type limiter struct {
	shared    *redis_rate.Limiter // nil without Redis: local only, and said so at start
	log       *slog.Logger
	local     atomic.Bool
	gauge     prometheus.Gauge
	fallbacks prometheus.Counter

	mu      sync.Mutex
	buckets map[bucketKey]*ratelimit.Limiter
}

// bucketKey names a local bucket: one per scope and limit.
type bucketKey struct {
	scope string
	lim   Limit
}

type verdict struct {
	ok        bool
	limit     int
	remaining int
	retry     time.Duration
	reset     time.Duration
}

func newLimiter(client redis.UniversalClient, log *slog.Logger, gauge prometheus.Gauge, fallbacks prometheus.Counter) *limiter {
	l := &limiter{log: log, gauge: gauge, fallbacks: fallbacks, buckets: map[bucketKey]*ratelimit.Limiter{}}
	if client != nil {
		l.shared = redis_rate.NewLimiter(client)
	} else {
		gauge.Set(1)
	}
	return l
}

// allow takes one request of key (a user or an IP) from scope's limit.
func (l *limiter) allow(ctx context.Context, scope, key string, lim Limit) verdict {
	if l.shared != nil {
		call, cancel := context.WithTimeout(ctx, limitCallTimeout)
		res, err := l.shared.Allow(call, "plaza:gateway:"+scope+":"+key, gcra(lim))
		cancel()
		if err == nil {
			l.recovered()
			return verdict{ok: res.Allowed > 0, limit: lim.Burst, remaining: res.Remaining, retry: max(res.RetryAfter, 0), reset: max(res.ResetAfter, 0)}
		}
		if ctx.Err() == nil { // not the client going away
			l.degraded(err)
		}
	}
	return l.localAllow(scope, key, lim)
}

// gcra expresses a rate in redis_rate's whole requests per period without losing a
// fractional rate (0.5/s is 50 per 100 s).
func gcra(lim Limit) redis_rate.Limit {
	return redis_rate.Limit{Rate: max(1, int(math.Round(lim.Rate*100))), Burst: lim.Burst, Period: 100 * time.Second}
}

func (l *limiter) localAllow(scope, key string, lim Limit) verdict {
	id := bucketKey{scope, lim}
	l.mu.Lock()
	b := l.buckets[id]
	if b == nil {
		b = ratelimit.New(lim.Rate, lim.Burst)
		l.buckets[id] = b
	}
	l.mu.Unlock()
	ok, remaining, retry := b.Take(key)
	full := time.Duration((float64(lim.Burst) - remaining) / lim.Rate * float64(time.Second))
	return verdict{ok: ok, limit: lim.Burst, remaining: int(remaining), retry: retry, reset: max(full, retry)}
}

func (l *limiter) degraded(err error) {
	if l.local.CompareAndSwap(false, true) {
		l.gauge.Set(1)
		l.fallbacks.Inc()
		l.log.Error("gateway: Redis cannot answer; rate limits are now counted by this gateway alone (each gateway allows the full rate) until it returns", "err", err)
	}
}

func (l *limiter) recovered() {
	if l.local.CompareAndSwap(true, false) {
		l.gauge.Set(0)
		l.log.Warn("gateway: Redis answers again; rate limits are shared by every gateway again")
	}
}
