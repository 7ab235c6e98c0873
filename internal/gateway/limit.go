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

	leaseMu   sync.Mutex
	leases    map[string]*lease // per Redis key
	lastSweep time.Time
}

// A lease is requests of one client's shared limit taken from Redis in one call, admitted
// here without asking again. Taken from the shared limit before they are admitted, they
// can never let a client past it across gateways; one not admitted within leaseLife lapses
// and is lost to the client, who is then limited a little more, never less. Only a limit
// large enough to give a lease of two or more has them (leaseSize), so that a client of an
// ordinary limit is counted request by request, as before.
type lease struct {
	left      int       // taken, not yet admitted
	remaining int       // Redis' remaining after the take
	reset     time.Time // when Redis said the limit would be full again
	expires   time.Time
	taking    bool // a call refilling it is under way; other requests meanwhile ask for one
}

// leaseLife bounds how long a lease's requests wait to be admitted.
const leaseLife = time.Second

// leaseSize is how many requests one Redis call may take for a client: 1% of the burst or
// 10 ms of the rate, whichever is less, at most 1,000. What a gateway can hold and lose of
// a client's limit is bounded by that per leaseLife. Under 2 there is no lease.
func leaseSize(lim Limit) int {
	return int(min(float64(lim.Burst)/100, lim.Rate/100, 1000))
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
	l := &limiter{log: log, gauge: gauge, fallbacks: fallbacks, buckets: map[bucketKey]*ratelimit.Limiter{}, leases: map[string]*lease{}}
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
		id := "plaza:gateway:" + scope + ":" + key
		n := leaseSize(lim)
		refill := false
		if n >= 2 {
			var v verdict
			if v, refill = l.fromLease(id, lim, time.Now()); v.ok {
				return v
			}
		}
		call, cancel := context.WithTimeout(ctx, limitCallTimeout)
		var res *redis_rate.Result
		var err error
		if refill {
			res, err = l.shared.AllowAtMost(call, id, gcra(lim), n)
			l.leased(id, res, err)
		} else {
			res, err = l.shared.Allow(call, id, gcra(lim))
		}
		cancel()
		if err == nil {
			l.recovered()
			remaining := res.Remaining
			if refill && res.Allowed > 1 {
				remaining += res.Allowed - 1 // leased: the client's still
			}
			return verdict{ok: res.Allowed > 0, limit: lim.Burst, remaining: remaining, retry: max(res.RetryAfter, 0), reset: max(res.ResetAfter, 0)}
		}
		if ctx.Err() == nil { // not the client going away
			l.degraded(err)
		}
	}
	return l.localAllow(scope, key, lim)
}

// fromLease admits a request from id's lease, if it holds one; otherwise refill says
// whether this request is to take a new lease (no other is taking one).
func (l *limiter) fromLease(id string, lim Limit, now time.Time) (v verdict, refill bool) {
	l.leaseMu.Lock()
	defer l.leaseMu.Unlock()
	le := l.leases[id]
	if le == nil {
		if now.Sub(l.lastSweep) > leaseLife {
			for k, old := range l.leases {
				if !old.taking && now.After(old.expires) {
					delete(l.leases, k)
				}
			}
			l.lastSweep = now
		}
		le = &lease{}
		l.leases[id] = le
	}
	if le.left > 0 && now.Before(le.expires) {
		le.left--
		return verdict{ok: true, limit: lim.Burst, remaining: le.remaining + le.left, reset: max(le.reset.Sub(now), 0)}, false
	}
	if le.taking {
		return verdict{}, false
	}
	le.taking = true
	return verdict{}, true
}

// leased keeps what a refilling call took beyond the request that made it.
func (l *limiter) leased(id string, res *redis_rate.Result, err error) {
	now := time.Now()
	l.leaseMu.Lock()
	defer l.leaseMu.Unlock()
	le := l.leases[id]
	if le == nil {
		return
	}
	le.taking = false
	if err != nil || res.Allowed < 2 {
		le.left = 0
		return
	}
	le.left, le.remaining = res.Allowed-1, res.Remaining
	le.reset, le.expires = now.Add(max(res.ResetAfter, 0)), now.Add(leaseLife)
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
