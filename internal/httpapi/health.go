package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"plaza/internal/plaza"
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

const (
	probeTimeout = 2 * time.Second
	// healthTTL is how long a probe result is reused: probes are public and unlimited, so
	// without it every /readyz would cost a database query.
	healthTTL = time.Second
)

// healthCache holds the last probe result; concurrent callers share one probe run.
type healthCache struct {
	mu  sync.Mutex
	at  time.Time
	rep healthReport
	run singleflight.Group
}

// health returns the dependencies' state, probed at most once per healthTTL, with the
// drain state as it is now (a drain must show at once).
func (s *Server) health(ctx context.Context) healthReport {
	c := &s.healthCache
	c.mu.Lock()
	rep, fresh := c.rep, !c.at.IsZero() && time.Since(c.at) < healthTTL
	c.mu.Unlock()
	if !fresh {
		v, _, _ := c.run.Do("probe", func() (any, error) {
			rep := s.probe(context.WithoutCancel(ctx))
			c.mu.Lock()
			c.rep, c.at = rep, time.Now()
			c.mu.Unlock()
			return rep, nil
		})
		rep = v.(healthReport)
	}
	if rep.Draining = s.draining.Load(); rep.Draining {
		rep.Status = "down"
	}
	return rep
}

// Ready reports what /readyz answers: every critical dependency up and no drain begun.
// The gRPC health service follows it.
func (s *Server) Ready(ctx context.Context) bool { return s.health(ctx).Status != "down" }

// probe runs every check concurrently.
func (s *Server) probe(ctx context.Context) healthReport {
	rep := healthReport{Status: "ok", Checks: make(map[string]checkResult, len(s.checks))}
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

// handleMetrics guards the Prometheus scrape: metrics name routes, users' activity and the
// process's state, so in production they are public only behind a bearer token, or served
// on their own listener (PLAZA_METRICS_ADDR).
func (s *Server) handleMetrics(metrics http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.metrics {
		case MetricsPublic:
		case MetricsToken:
			scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(token), []byte(s.metricsBearer)) != 1 {
				s.authFailed(w, r, plaza.Errorf(plaza.EUnauthenticated, "/metrics needs the metrics bearer token (PLAZA_METRICS_TOKEN)"))
				return
			}
		default:
			writeError(w, r, s.log, plaza.Errorf(plaza.ENotFound,
				"metrics are not served on this listener: set PLAZA_METRICS_ADDR for a listener of their own, or PLAZA_METRICS_TOKEN"))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		metrics.ServeHTTP(w, r)
	})
}
