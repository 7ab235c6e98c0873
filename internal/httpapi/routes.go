package httpapi

import (
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers the whole REST surface. Read it to see the API at a glance.
func (s *Server) routes() {
	// Probes and metrics: never behind auth, never rate limited.
	s.handle("GET /healthz", s.handleLiveness())
	s.handle("GET /readyz", s.handleHealth())
	s.handle("GET /api/health", s.handleHealth())
	s.handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))

	s.userRoutes()
	s.catalogRoutes()
}
