package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// BenchmarkRateLimiter takes a token per request, as the middleware does, at a rate no
// client reaches: one client, 10,000 clients in turn, and one client from every core.
func BenchmarkRateLimiter(b *testing.B) {
	b.Run("one_client", func(b *testing.B) {
		l := newRateLimiter(1e9, 1_000_000)
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, _ := l.allow("ip:192.0.2.1"); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("clients=10000", func(b *testing.B) {
		l := newRateLimiter(1e9, 1_000_000)
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = "ip:10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if ok, _, _ := l.allow(keys[i%len(keys)]); !ok {
				b.Fatal("refused")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := newRateLimiter(1e9, 1_000_000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.allow("ip:192.0.2.1")
			}
		})
	})
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
