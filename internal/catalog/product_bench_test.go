package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// BenchmarkProductEncode encodes a generated product as the catalog caches it.
func BenchmarkProductEncode(b *testing.B) {
	p := catalog.NewGenerator(1, time.Now()).Next()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := json.NewEncoder(&buf).Encode(p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

// BenchmarkProductJSON is GET /api/products/{id} below the transport, on SQLite: a hit
// (the encoded bytes from the in-process cache) and a miss (a query and an encoding; the
// cache holds one entry and the reads walk 1,000 products).
func BenchmarkProductJSON(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, store.SQLite)
	discard := slog.New(slog.DiscardHandler)
	seeder, err := catalog.New(catalog.Options{Store: db.Products(), Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	newService := func(entries int) *cached.Catalog {
		c := cache.New(cache.NewMemory(entries), cache.Options{Logger: discard})
		b.Cleanup(func() { c.Close() })
		return cached.New(seeder, c, discard)
	}
	if err := seeder.Seed(ctx, 1000, nil); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for f := (catalog.Filter{Limit: plaza.MaxLimit}); ; {
		page, err := seeder.List(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range page.Items {
			ids = append(ids, p.ID)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}

	b.Run("hit", func(b *testing.B) {
		svc := newService(1000)
		if _, err := svc.ProductJSON(ctx, ids[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if e, err := svc.ProductJSON(ctx, ids[0]); err != nil || !e.Hit {
				b.Fatal("not a hit", err)
			}
		}
	})
	// uncached_sqlite is the read of PLAZA_PRODUCT_CACHE=off: the cache is skipped, and the
	// context can be canceled like an HTTP request's (whose Done channel makes the drivers
	// and database/sql watch it).
	misses := func(b *testing.B, ctx context.Context, svc *cached.Catalog) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if e, err := svc.ProductJSON(ctx, ids[i%len(ids)]); err != nil || e.Hit {
				b.Fatal("not a miss", err)
			}
			i++
		}
	}
	b.Run("uncached_sqlite", func(b *testing.B) {
		svc := newService(1)
		svc.SkipProductCache()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		misses(b, ctx, svc)
	})
	b.Run("miss_sqlite", func(b *testing.B) { misses(b, ctx, newService(1)) })
}

// BenchmarkCreate is POST /api/products below the transport: validation, the insert with
// its category paths (and on SQLite full-text rows) in one transaction with its outbox
// event, the cache invalidation, and the outbox relay publishing (to nowhere) and deleting
// the events, as a server's runs beside its creates. "serial" creates one at a time;
// "parallel" from 16 goroutines at once, as 16 clients would, which the store commits in
// groups. cpu-us/op is the process's CPU time (user and system) per create: on a shared
// machine ns/op moves with other processes' load, CPU per create much less. PostgreSQL
// runs need PLAZA_TEST_POSTGRES_URL (scripts/with-services.sh).
func BenchmarkCreate(b *testing.B) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(dialect)+"/serial", func(b *testing.B) {
			products, ctx := createBench(b, dialect)
			g := catalog.NewGenerator(1, time.Now())
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if _, err := products.Create(ctx, g.Next().Input()); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
		b.Run(string(dialect)+"/parallel", func(b *testing.B) {
			products, ctx := createBench(b, dialect)
			var seed atomic.Uint64
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			cpu := cpuTime(b)
			b.RunParallel(func(pb *testing.PB) {
				g := catalog.NewGenerator(seed.Add(1), time.Now())
				for pb.Next() {
					if _, err := products.Create(ctx, g.Next().Input()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu.report(b)
		})
	}
}

func createBench(b *testing.B, dialect store.Dialect) (*cached.Catalog, context.Context) {
	db := storetest.Open(b, dialect)
	discard := slog.New(slog.DiscardHandler)
	svc, err := catalog.New(catalog.Options{Store: db.Products(), Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	c := cache.New(cache.NewMemory(1000), cache.Options{Logger: discard})
	b.Cleanup(func() { c.Close() })
	relayCtx, stop := context.WithCancel(context.Background())
	relayed := make(chan error, 1)
	go func() { relayed <- db.RelayOutbox(relayCtx, nowhere{}, discard) }()
	b.Cleanup(func() {
		stop()
		if err := <-relayed; err != nil {
			b.Error(err)
		}
	})
	ctx := plaza.WithPrincipal(context.Background(), plaza.Principal{UserID: "admin", Role: plaza.RoleAdmin})
	return cached.New(svc, c, discard), ctx
}

// nowhere is a bus that takes every event and keeps none.
type nowhere struct{}

func (nowhere) Publish(_ context.Context, _ string, ev plaza.Event) (plaza.Event, error) {
	return ev, nil
}

// cpuClock is the process's CPU time when a benchmark's loop began.
type cpuClock time.Duration

func cpuTime(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock(processCPU(b))
}

// report adds cpu-us/op, the process's CPU time since the clock began per iteration.
func (c cpuClock) report(b *testing.B) {
	b.Helper()
	if b.N > 0 {
		b.ReportMetric(float64(processCPU(b)-time.Duration(c))/float64(b.N)/1e3, "cpu-us/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
