package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing but its header map, cleared for
// each request, so a benchmark measures the chain rather than a recorder's buffers.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddlewareChain serves GET /healthz through every middleware: request ID,
// security headers, access log and metrics, recover, CORS, auth (anonymous), rate limit
// (the probe is exempt), body limit and the mux. log=warn is how `make bench` runs Plaza
// (the access log line is built but not written); log=info writes it.
func BenchmarkMiddlewareChain(b *testing.B) {
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		b.Run("log="+level.String(), func(b *testing.B) {
			s := New(Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
			r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkRateLimitMiddleware is the limiter as requests meet it: key, token, and the
// three RateLimit-* headers, in front of a handler that does nothing.
func BenchmarkRateLimitMiddleware(b *testing.B) {
	s := New(Options{RateLimit: 1e9, RateBurst: 1_000_000})
	h := s.rateLimit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/api/products/x", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
