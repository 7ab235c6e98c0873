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
	small := smallNumbers(burst)
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
		h["Ratelimit-Remaining"] = small.of(int(remaining))
		full := time.Duration((float64(burst) - remaining) / perSecond * float64(time.Second))
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
