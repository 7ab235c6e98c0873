package graphql_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/graphql"
	"plaza/internal/httpapi"
)

// oneProduct is the catalog service below the cache: it knows one product, and a benchmark
// that reads it more than once has missed the cache.
type oneProduct struct {
	cached.Service
	reads int
}

func (s *oneProduct) Product(_ context.Context, id string) (catalog.Product, error) {
	s.reads++
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return catalog.Product{ID: id, Name: "Desk Lamp", Description: "A lamp for a desk.", PriceCents: 1999, Currency: "USD",
		Category: "home", Subcategory: "lighting", Stock: 7, Version: 3, CreatedAt: now, UpdatedAt: now}, nil
}

// ProductJSON is the read the cache loads through: Product encoded as the store's is.
func (s *oneProduct) ProductJSON(ctx context.Context, id string) ([]byte, int64, error) {
	p, err := s.Product(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	body, err := json.Marshal(p)
	return append(body, '\n'), p.Version, err
}

// sink is a ResponseWriter that keeps its header map and body buffer across requests
// (both cleared for each), so a benchmark measures the handler rather than a recorder.
type sink struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *sink) Header() http.Header { return w.h }
func (w *sink) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *sink) WriteHeader(code int) { w.status = code }

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProductQuery serves `query($id){product(id){…}}` over POST /graphql through the
// whole REST chain at production settings (access log written, rate limiter on, the body
// limit) with the catalog cache in front of the product, as internal/app assembles it.
// rest is GET /api/products/{id} through the same chain and cache, for scale: under load
// the REST read runs at about 0.6× the bare net/http baseline. cpu-ns/op is the figure to
// compare on a shared machine.
func BenchmarkProductQuery(b *testing.B) {
	svc := &oneProduct{}
	products := cached.New(svc, cache.New(cache.NewMemory(1000), cache.Options{Logger: slog.New(slog.DiscardHandler)}), nil)
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gql := graphql.New(graphql.Options{Users: &fakeUsers{}, Catalog: products, Chat: fakeChat{}, Logger: log})
	api := httpapi.New(httpapi.Options{Logger: log, RateLimit: 1e9, RateBurst: 1_000_000, Catalog: products, GraphQL: gql})
	const id = "0192f0c4-7a8e-7c3e-9d2b-3f1c5a6b7d8e"

	serve := func(b *testing.B, newRequest func() *http.Request) {
		w := &sink{h: http.Header{}}
		serveOnce := func() {
			clear(w.h)
			w.status = 0
			w.body.Reset()
			api.ServeHTTP(w, newRequest())
		}
		serveOnce() // the product is cached from here on
		if w.status != http.StatusOK || !strings.Contains(w.body.String(), `"Desk Lamp"`) {
			b.Fatalf("%d %s", w.status, w.body.String())
		}
		reads := svc.reads
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			serveOnce()
		}
		// On a shared machine ns/op counts the time others ran too; the process's own CPU
		// time (GC included) per request is the figure that compares.
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		if w.status != http.StatusOK || svc.reads != reads {
			b.Fatalf("last answer %d; %d reads below the cache", w.status, svc.reads-reads)
		}
	}
	// The bench harness's query (bench/cmd/plazabench): the fields REST's answer holds.
	const query = `query($id:ID!){product(id:$id){id name description priceCents currency category subcategory stock version createdAt updatedAt}}`
	post := func(body string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/graphql-response+json")
			return r
		}
	}
	b.Run("graphql", func(b *testing.B) {
		serve(b, post(`{"query":"`+query+`","variables":{"id":"`+id+`"}}`))
	})
	// apq: the same query persisted, sent as its hash alone (the first request, in serve,
	// is answered PersistedQueryNotFound and fails the benchmark, so register it first).
	b.Run("apq", func(b *testing.B) {
		sum := sha256.Sum256([]byte(query))
		persisted := `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}},"variables":{"id":"` + id + `"}}`
		api.ServeHTTP(&sink{h: http.Header{}}, post(`{"query":"`+query+`",`+persisted)())
		serve(b, post(`{`+persisted))
	})
	b.Run("rest", func(b *testing.B) {
		serve(b, func() *http.Request { return httptest.NewRequest(http.MethodGet, "/api/products/"+id, nil) })
	})
}
