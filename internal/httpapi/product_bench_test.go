package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/logbuf"
	"plaza/internal/logx"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// BenchmarkProductGet is a cached GET /api/products/{id} through the whole REST chain at
// the settings a user ships with: the access log at info (cmd/plaza's handler, buffered,
// here into io.Discard) and the limiter on with a rate it never reaches. What net/http
// does around a handler (parsing, writing the header and the connection) is not in it,
// so the figure is what Plaza itself costs a request.
func BenchmarkProductGet(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, store.SQLite)
	discard := slog.New(slog.DiscardHandler)
	svc, err := catalog.New(catalog.Options{Store: db.Products(), Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Seed(ctx, 1, nil); err != nil {
		b.Fatal(err)
	}
	page, err := svc.List(ctx, catalog.Filter{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		b.Fatal(page, err)
	}
	p := page.Items[0]
	c := cache.New(cache.NewMemory(1000), cache.Options{Logger: discard})
	b.Cleanup(func() { c.Close() })
	logs := logbuf.New(io.Discard, 64<<10, logbuf.FlushInterval)
	b.Cleanup(func() { logs.Close() })
	s := New(Options{
		Logger:    slog.New(logx.Limit(logx.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}), time.Second)),
		RateLimit: 1e6, RateBurst: 1e6,
		Catalog: cached.New(svc, c, discard),
	})
	r := httptest.NewRequest(http.MethodGet, "/api/products/"+p.ID, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	w := &discardWriter{h: http.Header{}}
	s.ServeHTTP(w, r) // the miss that fills the cache
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, r)
	}
}
