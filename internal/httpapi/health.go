package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Check is one dependency probed by /readyz and /api/health. A failing critical check makes
// the instance unready (503); a failing non-critical one only degrades it (requests are
// still answered, e.g. with the cache acting as a miss).
type Check struct {
	Name     string
	Critical bool
	Probe    func(ctx context.Context) error
}

type checkResult struct {
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Critical  bool    `json:"critical"`
}

type healthReport struct {
	Status   string                 `json:"status"` // ok | degraded | down
	Draining bool                   `json:"draining,omitempty"`
	Checks   map[string]checkResult `json:"checks"`
}

const probeTimeout = 2 * time.Second

func (s *Server) health(ctx context.Context) healthReport {
	rep := healthReport{Status: "ok", Draining: s.draining.Load(), Checks: make(map[string]checkResult, len(s.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			start := time.Now()
			err := c.Probe(ctx)
			res := checkResult{Status: "ok", LatencyMS: float64(time.Since(start).Microseconds()) / 1000, Critical: c.Critical}
			if err != nil {
				res.Status = "down"
				s.log.WarnContext(ctx, "health check failed", "check", c.Name, "err", err)
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Checks[c.Name] = res
			switch {
			case err != nil && c.Critical:
				rep.Status = "down"
			case err != nil && rep.Status == "ok":
				rep.Status = "degraded"
			}
		})
	}
	wg.Wait()
	if rep.Draining {
		rep.Status = "down"
	}
	return rep
}

func (s *Server) handleLiveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		encode(w, r, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleHealth serves /readyz and /api/health: 200 while every critical dependency answers
// and the server is not draining, else 503, with each dependency's status and latency.
func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rep := s.health(r.Context())
		status := http.StatusOK
		if rep.Status == "down" {
			status = http.StatusServiceUnavailable
		}
		encode(w, r, status, rep)
	})
}
