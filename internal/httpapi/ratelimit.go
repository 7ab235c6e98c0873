package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"plaza/internal/plaza"
)

// rateLimiter keeps one token bucket per client: the authenticated user when known, else the
// client IP. Entries idle for longer than a full refill are evicted, and the table never holds
// more than maxKeys entries, so memory stays bounded under many distinct clients.
type rateLimiter struct {
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

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &rateLimiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		idle:    max(refill, time.Minute),
		maxKeys: 100_000,
		now:     time.Now,
		clients: make(map[string]*client),
	}
}

// allow takes a token for key and returns the tokens left and, when refused, how long until
// one is available.
func (l *rateLimiter) allow(key string) (ok bool, remaining float64, retry time.Duration) {
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

// sweep drops idle clients at most once per idle period, and arbitrary ones past maxKeys.
// Called with l.mu held.
func (l *rateLimiter) sweep(now time.Time) {
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

func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// unlimited paths: probes and scrapes must never be throttled.
var unlimited = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/api/health": true}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	l := s.limiter
	// The three RateLimit-* headers go on every limited response. Their values are small
	// whole numbers, so the header value slices are made once and shared (net/http only
	// reads them), rather than formatted and allocated per request.
	limit := []string{strconv.Itoa(l.burst)}
	small := smallNumbers(l.burst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unlimited[r.URL.Path] || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		key := "ip:" + infoFrom(r.Context()).ip
		if p, ok := plaza.PrincipalFrom(r.Context()); ok {
			key = "user:" + p.UserID
		}
		ok, remaining, retry := l.allow(key)
		h := w.Header()
		h["Ratelimit-Limit"] = limit
		h["Ratelimit-Remaining"] = small.of(int(remaining))
		full := time.Duration((float64(l.burst) - remaining) / float64(l.limit) * float64(time.Second))
		h["Ratelimit-Reset"] = small.of(int(math.Ceil(max(full, retry).Seconds())))
		if !ok {
			writeError(w, r, s.log, &plaza.Error{Code: plaza.ERateLimited, RetryAfter: retry,
				Message: "too many requests; retry after the time in Retry-After"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// numberValues are header values for 0..n-1, made once.
type numberValues [][]string

// smallNumbers makes the values up to n (at most 4096: bigger ones are formatted).
func smallNumbers(n int) numberValues {
	v := make(numberValues, min(n, 4096)+1)
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}

func (v numberValues) of(n int) []string {
	if n >= 0 && n < len(v) {
		return v[n]
	}
	return []string{strconv.Itoa(n)}
}
