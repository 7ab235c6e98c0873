package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"plaza/internal/plaza"
)

// unlimited paths: probes and scrapes must never be throttled.
var unlimited = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/api/health": true}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	l := s.limiter
	burst, perSecond := l.Burst(), l.PerSecond()
	// The three RateLimit-* headers go on every limited response. Their values are small
	// whole numbers, so the header value slices are made once and shared (net/http only
	// reads them), rather than formatted and allocated per request.
	limit := []string{strconv.Itoa(burst)}
	// Remaining is mostly near the burst (a client under its limit has a nearly full
	// bucket), Reset mostly a few seconds: each table covers those.
	remainingValues := numbers(burst-maxNumberValues, burst)
	resetValues := numbers(0, min(maxNumberValues, int(math.Ceil(float64(burst)/perSecond)))) // at most a full refill
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unlimited[r.URL.Path] || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		key := "ip:" + infoFrom(r.Context()).ip
		if p, ok := plaza.PrincipalFrom(r.Context()); ok {
			key = "user:" + p.UserID
		}
		ok, remaining, retry := l.Take(key)
		h := w.Header()
		h["Ratelimit-Limit"] = limit
		h["Ratelimit-Remaining"] = remainingValues.of(int(remaining))
		full := time.Duration((float64(burst) - remaining) / perSecond * float64(time.Second))
		h["Ratelimit-Reset"] = resetValues.of(int(math.Ceil(max(full, retry).Seconds())))
		if !ok {
			writeError(w, r, s.log, &plaza.Error{Code: plaza.ERateLimited, RetryAfter: retry,
				Message: "too many requests; retry after the time in Retry-After"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxNumberValues bounds a numbers table (about 40 bytes a value).
const maxNumberValues = 4096

// numberValues are header values for the whole numbers lo..lo+len(v)-1, made once.
type numberValues struct {
	lo int
	v  [][]string
}

// numbers makes the values from max(lo, 0) to hi; a number outside is formatted when
// asked for.
func numbers(lo, hi int) numberValues {
	lo = max(lo, 0)
	n := numberValues{lo: lo, v: make([][]string, max(hi-lo+1, 0))}
	for i := range n.v {
		n.v[i] = []string{strconv.Itoa(lo + i)}
	}
	return n
}

func (n numberValues) of(x int) []string {
	if i := x - n.lo; i >= 0 && i < len(n.v) {
		return n.v[i]
	}
	return []string{strconv.Itoa(x)}
}
