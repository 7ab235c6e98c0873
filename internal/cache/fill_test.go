package cache_test

import (
	"context"
	"testing"
	"time"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/redistest"
)

// loadDuring starts c.GetOrLoad(key) with a load that returns "old" only once during has
// run: the read of the source began before the write that during stands for.
func loadDuring(t *testing.T, c *cache.Cache, key string, during func()) {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(context.Background(), key, time.Minute, func(context.Context) ([]byte, error) {
			close(started)
			<-release
			return []byte("old"), nil
		})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatalf("%s was not loaded: the cache still had it", key)
	}
	during()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestALoadOlderThanADeleteIsNotKept: a value loaded by a read that began before a write
// committed must not be stored after the write's Delete, or the old version is served
// until its TTL. On one instance with an in-process backend it is never stored; across
// instances on Redis, a fill that lands after the other instance's delete is deleted
// again when the announcement arrives.
func TestALoadOlderThanADeleteIsNotKept(t *testing.T) {
	t.Parallel()
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		b := cache.NewMemory(100)
		c := cache.New(b, cache.Options{Logger: quiet})
		t.Cleanup(func() { c.Close() })
		for range 20 {
			loadDuring(t, c, "k", func() { must(t, c.Delete(t.Context(), "k")) })
			if val, ok := c.Get(t.Context(), "k"); ok {
				t.Fatalf("the value loaded before the delete was kept: %q", val)
			}
		}
	})
	t.Run("two instances on Redis", func(t *testing.T) {
		t.Parallel()
		url := redistest.URL(t)
		prefix, busPrefix := "test:fill:"+randomName()+":", "test:fillbus:"+randomName()+":"
		newBus := func() bus.Bus {
			b := bus.NewRedis(redistest.Client(t, url), bus.RedisOptions{Prefix: busPrefix, Block: 200 * time.Millisecond})
			t.Cleanup(func() { b.Close() })
			return b
		}
		raw := cache.NewRedis(redistest.Client(t, url), prefix)
		a := cache.New(cache.NewRedis(redistest.Client(t, url), prefix), cache.Options{Logger: quiet, Bus: newBus(), LocalSize: 100})
		c := cache.New(cache.NewRedis(redistest.Client(t, url), prefix), cache.Options{Logger: quiet, Bus: newBus(), LocalSize: 100})
		ctx, stop := context.WithCancel(t.Context())
		t.Cleanup(func() { stop(); a.Close(); c.Close() })
		go func() { _ = a.Run(ctx) }()
		go func() { _ = c.Run(ctx) }()
		for _, r := range []*cache.Cache{a, c} {
			select {
			case <-r.Ready():
			case <-time.After(waitFor):
				t.Fatal("Run never became ready")
			}
		}
		for i := range 20 {
			// B reads, A's write commits and A deletes the key while B's read is under way.
			loadDuring(t, c, "k", func() { must(t, a.Delete(t.Context(), "k")) })
			deadline := time.Now().Add(waitFor)
			for {
				_, inRedis, err := raw.Get(t.Context(), "k")
				_, inB := c.Get(t.Context(), "k")
				if err == nil && !inRedis && !inB {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the value loaded before A's delete is still served (Redis %v, B %v)", i, inRedis, inB)
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
}
