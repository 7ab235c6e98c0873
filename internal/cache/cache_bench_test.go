package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/cache"
)

// benchValue is about the size of a cached product: its ETag line and JSON body.
var benchValue = bytes.Repeat([]byte("x"), 420)

type namedCache struct {
	name string
	c    *cache.Cache
}

// benchCaches are the two ways Plaza reads a hit: from the in-process backend (SQLite
// deployments), and from the local tier kept in front of Redis, here in front of a memory
// backend it never needs to ask. Both count hits in a registry, as Plaza does.
func benchCaches() []namedCache {
	discard := slog.New(slog.DiscardHandler)
	return []namedCache{
		{"memory", cache.New(cache.NewMemory(1000), cache.Options{Logger: discard, Registerer: prometheus.NewRegistry()})},
		{"local_tier", cache.New(cache.NewMemory(1000), cache.Options{Logger: discard, Registerer: prometheus.NewRegistry(),
			LocalSize: 1000})},
	}
}

// BenchmarkCacheGet reads one present key.
func BenchmarkCacheGet(b *testing.B) {
	ctx := context.Background()
	for _, nc := range benchCaches() {
		c := nc.c
		b.Run(nc.name, func(b *testing.B) {
			defer c.Close()
			c.Set(ctx, "product:1", benchValue, 0)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.Get(ctx, "product:1"); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkCacheGetParallel reads one present key from every core, as concurrent requests
// for a popular product do.
func BenchmarkCacheGetParallel(b *testing.B) {
	ctx := context.Background()
	for _, nc := range benchCaches() {
		c := nc.c
		b.Run(nc.name, func(b *testing.B) {
			defer c.Close()
			c.Set(ctx, "product:1", benchValue, 0)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.Get(ctx, "product:1")
				}
			})
		})
	}
}

// BenchmarkCacheGetOrLoadHit is the catalog's read path on a hit.
func BenchmarkCacheGetOrLoadHit(b *testing.B) {
	ctx := context.Background()
	load := func(context.Context) ([]byte, error) { return benchValue, nil }
	for _, nc := range benchCaches() {
		c := nc.c
		b.Run(nc.name, func(b *testing.B) {
			defer c.Close()
			if _, _, err := c.GetOrLoad(ctx, "product:1", 0, load); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, hit, err := c.GetOrLoad(ctx, "product:1", 0, load); err != nil || !hit {
					b.Fatal("not a hit", err)
				}
			}
		})
	}
}
