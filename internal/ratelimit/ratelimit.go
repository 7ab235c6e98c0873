// Package ratelimit keeps one token bucket per client key (a user, an IP) with bounded
// memory: buckets idle for longer than a full refill are evicted, and the table never holds
// more than MaxKeys entries however many distinct clients come.
//
// Both transports limit with it: REST per user or IP (and failed authentications per IP),
// gRPC per user or peer.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MaxKeys bounds the clients one Limiter remembers.
const MaxKeys = 100_000

// Limiter is a token bucket per key.
type Limiter struct {
	limit   rate.Limit
	burst   int
	idle    time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	clients   map[string]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows each key perSecond requests a second on average and burst at once.
func New(perSecond float64, burst int) *Limiter {
	burst = max(burst, 1)
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &Limiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		idle:    max(refill, time.Minute),
		maxKeys: MaxKeys,
		now:     time.Now,
		clients: make(map[string]*client),
	}
}

// Allow takes a token for key. When none is left it takes nothing and says how long until
// one is.
func (l *Limiter) Allow(key string) (ok bool, retry time.Duration) {
	ok, _, retry = l.Take(key)
	return ok, retry
}

// Take is Allow that also tells how many tokens key has left, for RateLimit-* headers.
func (l *Limiter) Take(key string) (ok bool, remaining float64, retry time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[key]
	if c == nil {
		l.sweep(now)
		c = &client{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, 0, d
	}
	return true, c.lim.TokensAt(now), 0
}

// PerSecond is the refill rate and Burst the bucket's size.
func (l *Limiter) PerSecond() float64 { return float64(l.limit) }
func (l *Limiter) Burst() int         { return l.burst }

// sweep drops idle clients at most once per half idle period, and arbitrary ones past
// maxKeys. Called with l.mu held.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) >= l.idle/2 {
		l.lastSweep = now
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idle {
				delete(l.clients, k)
			}
		}
	}
	for k := range l.clients {
		if len(l.clients) < l.maxKeys {
			break
		}
		delete(l.clients, k)
	}
}

func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
