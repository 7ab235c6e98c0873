package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"plaza/internal/config"
	"plaza/internal/plaza"
	"plaza/internal/redistest"
	"plaza/internal/store/storetest"
)

// TestTwoInstancesActAsOne opens two instances' backends with the same wiring `plaza serve`
// uses, on one PostgreSQL and one Redis: an event published on one reaches a subscriber on
// the other, and a cache entry invalidated on one is gone from the other's local tier.
func TestTwoInstancesActAsOne(t *testing.T) {
	t.Parallel()
	cfg := config.Config{DatabaseURL: storetest.PostgresURL(t), RedisURL: redistest.URL(t), DataDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := open(t, ctx, cfg)
	b := open(t, ctx, cfg)
	if a.redis == nil || b.redis == nil {
		t.Fatal("REDIS_URL set but the instances are not on Redis")
	}

	stream := "test-" + plaza.NewID()
	sub, err := b.bus.Subscribe(ctx, stream, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ev, _ := plaza.NewEvent("product.updated", "someone", map[string]string{"id": "p1"}, time.Now())
	sent, err := a.bus.Publish(ctx, stream, ev)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-sub.Events():
		if got.ID != sent.ID || got.Type != "product.updated" {
			t.Fatalf("instance B got %+v, want %+v", got, sent)
		}
	case <-ctx.Done():
		t.Fatal("event published on A never reached B")
	}

	// B's cache listens for invalidations the way Serve runs it, and is joined before
	// its backends close.
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.cache.Run(runCtx) }()
	t.Cleanup(func() {
		stopRun()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	key := "product:" + plaza.NewID()
	b.cache.Set(ctx, key, []byte("v1"), time.Minute)
	if v, ok := b.cache.Get(ctx, key); !ok || string(v) != "v1" {
		t.Fatalf("B's own entry: %q %v", v, ok)
	}
	select {
	case <-b.cache.Ready():
	case <-ctx.Done():
		t.Fatal("B's invalidation listener never became ready")
	}
	if err := a.cache.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := b.cache.Get(ctx, key); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry deleted on A still served by B after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func open(t *testing.T, ctx context.Context, cfg config.Config) *deps {
	t.Helper()
	d, err := openDeps(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d
}

// TestStoreConfigKeepsTheMemoryMapSetting: PLAZA_SQLITE_MMAP_BYTES=0 must reach the store
// as "off", not as the store's "use the default".
func TestStoreConfigKeepsTheMemoryMapSetting(t *testing.T) {
	t.Parallel()
	for set, want := range map[int64]int64{0: -1, 4096: 4096, 1 << 30: 1 << 30} {
		if got := storeConfig(config.Config{SQLiteMmapBytes: set}, nil).SQLiteMmapBytes; got != want {
			t.Errorf("PLAZA_SQLITE_MMAP_BYTES=%d reaches the store as %d, want %d", set, got, want)
		}
	}
}
