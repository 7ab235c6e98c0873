package cache_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/plaza"
	"plaza/internal/redistest"
)

// waitFor bounds every wait in these tests; reaching it means something is broken.
const waitFor = 10 * time.Second

// backend opens a fresh, isolated backend; peer opens a second instance's view of it
// (a second client on the same Redis, or the same memory backend).
type backend struct {
	open func(t *testing.T) (b cache.Backend, peer func() cache.Backend)
	// openBus returns a bus for one instance, shared with the other instances of the test.
	openBus func(t *testing.T) func() bus.Bus
	// timed runs a test that waits for entries to expire: in a synctest bubble, where
	// sleeping is instant and exact, for backends whose clock is this process's; on the
	// real clock for Redis, whose expiry runs in the server.
	timed func(t *testing.T, f func(t *testing.T))
}

func TestMemory(t *testing.T) {
	t.Parallel()
	contract(t, backend{
		open: func(t *testing.T) (cache.Backend, func() cache.Backend) {
			b := cache.NewMemory(1000)
			t.Cleanup(func() { b.Close() })
			return b, func() cache.Backend { return b }
		},
		openBus: func(t *testing.T) func() bus.Bus {
			b := bus.NewMemory(bus.MemoryOptions{})
			t.Cleanup(func() { b.Close() })
			return func() bus.Bus { return b }
		},
		timed: synctest.Test,
	})
}

func TestRedis(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	contract(t, backend{
		open: func(t *testing.T) (cache.Backend, func() cache.Backend) {
			prefix := "test:cache:" + randomName() + ":"
			peer := func() cache.Backend { return cache.NewRedis(redistest.Client(t, url), prefix) }
			return peer(), peer
		},
		openBus: func(t *testing.T) func() bus.Bus {
			prefix := "test:cachebus:" + randomName() + ":"
			return func() bus.Bus {
				b := bus.NewRedis(redistest.Client(t, url), bus.RedisOptions{Prefix: prefix, Block: 200 * time.Millisecond})
				t.Cleanup(func() { b.Close() })
				return b
			}
		},
		timed: func(t *testing.T, f func(t *testing.T)) { f(t) },
	})
}

func contract(t *testing.T, be backend) {
	t.Run("get and set", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		ctx := t.Context()
		if _, ok, err := b.Get(ctx, "k"); ok || err != nil {
			t.Fatalf("Get of a missing key = ok %v, err %v", ok, err)
		}
		val := []byte("v1")
		must(t, b.Set(ctx, "k", val, 0))
		val[0] = 'X' // the backend keeps its own copy
		expectValue(t, b, "k", "v1")
		must(t, b.Set(ctx, "k", []byte("v2"), time.Minute))
		got := expectValue(t, b, "k", "v2")
		// What Get returns may be the backend's own (readers never write to it), but
		// appending to it copies rather than writing into the backend's spare capacity.
		if more := append(got, "more"...); cap(got) != len(got) && &more[0] == &got[0] {
			t.Fatalf("an append to Get's value wrote into the backend's slice")
		}
		expectValue(t, b, "k", "v2")
		must(t, b.Set(ctx, "empty", []byte{}, 0))
		expectValue(t, b, "empty", "")
	})

	t.Run("delete unchanged deletes a key only while it holds the value named", func(t *testing.T) {
		t.Parallel()
		b, peer := be.open(t)
		ctx := t.Context()
		must(t, b.Set(ctx, "same", []byte("v1"), time.Minute))
		must(t, b.Set(ctx, "changed", []byte("v1"), time.Minute))
		must(t, peer().Set(ctx, "changed", []byte("v2"), time.Minute)) // another instance's fill
		must(t, b.Set(ctx, "empty", []byte{}, time.Minute))
		d1 := cache.DigestOf([]byte("v1"))
		deleted, err := b.DeleteUnchanged(ctx, []string{"same", "changed", "missing", "empty"}, []cache.Digest{d1, d1, d1, cache.DigestOf(nil)})
		must(t, err)
		if !slices.Equal(deleted, []string{"same", "empty"}) {
			t.Fatalf("deleted %q, want [same empty]", deleted)
		}
		expectMissing(t, b, "same")
		expectMissing(t, b, "empty")
		expectValue(t, b, "changed", "v2")
		if deleted, err := b.DeleteUnchanged(ctx, nil, nil); err != nil || len(deleted) != 0 {
			t.Fatalf("no keys: %q, %v", deleted, err)
		}
	})

	t.Run("get many reads present, missing and empty values in order", func(t *testing.T) {
		t.Parallel()
		b, peer := be.open(t)
		ctx := t.Context()
		must(t, b.Set(ctx, "one", []byte("1"), time.Minute))
		must(t, b.Set(ctx, "empty", []byte{}, time.Minute))
		vals, ok, err := peer().GetMany(ctx, []string{"missing", "one", "empty", "one"})
		must(t, err)
		want := []struct {
			ok  bool
			val string
		}{{false, ""}, {true, "1"}, {true, ""}, {true, "1"}}
		if len(vals) != len(want) || len(ok) != len(want) {
			t.Fatalf("GetMany of 4 keys gave %d values and %d flags", len(vals), len(ok))
		}
		for i, w := range want {
			if ok[i] != w.ok || string(vals[i]) != w.val {
				t.Errorf("key %d: got %q (ok %v), want %q (ok %v)", i, vals[i], ok[i], w.val, w.ok)
			}
		}

		// Through the Cache, answered partly by the local tier and partly by the backend.
		c := cache.New(b, cache.Options{LocalSize: 10})
		t.Cleanup(func() { c.Close() })
		if _, hit := c.Get(ctx, "one"); !hit {
			t.Fatal("Get of a stored key missed")
		}
		cv, cok := c.GetMany(ctx, "missing", "one", "empty")
		if cok[0] || !cok[1] || string(cv[1]) != "1" || !cok[2] || len(cv[2]) != 0 {
			t.Fatalf("Cache.GetMany = %q %v; want [missing, 1, empty]", cv, cok)
		}
	})

	// The windows are seconds long so that Redis, on the real clock, has a second of
	// margin on a loaded machine; in the memory backend's bubble they take no time.
	t.Run("entries expire after their ttl", func(t *testing.T) {
		t.Parallel()
		be.timed(t, func(t *testing.T) {
			b, _ := be.open(t)
			must(t, b.Set(t.Context(), "short", []byte("v"), 2*time.Second))
			must(t, b.Set(t.Context(), "long", []byte("v"), time.Minute))
			expectValue(t, b, "short", "v")
			time.Sleep(2100 * time.Millisecond)
			expectMissing(t, b, "short")
			expectValue(t, b, "long", "v")
		})
	})

	t.Run("delete removes several keys", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		for _, k := range []string{"a", "b", "c"} {
			must(t, b.Set(t.Context(), k, []byte(k), time.Minute))
		}
		must(t, b.Delete(t.Context(), "a", "b", "never-set"))
		must(t, b.Delete(t.Context()))
		expectMissing(t, b, "a")
		expectMissing(t, b, "b")
		expectValue(t, b, "c", "c")
	})

	t.Run("incr counts within a fixed window", func(t *testing.T) {
		t.Parallel()
		be.timed(t, func(t *testing.T) {
			b, _ := be.open(t)
			ctx := t.Context()
			const window = 2 * time.Second
			for want := int64(1); want <= 3; want++ {
				if got, err := b.Incr(ctx, "n", window); err != nil || got != want {
					t.Fatalf("Incr = %d, %v; want %d", got, err, want)
				}
			}
			expectValue(t, b, "n", "3") // counters are decimal text on both backends
			time.Sleep(window / 2)
			// A later Incr does not extend the window.
			if got, err := b.Incr(ctx, "n", window); err != nil || got != 4 {
				t.Fatalf("Incr = %d, %v; want 4", got, err)
			}
			time.Sleep(window/2 + 100*time.Millisecond)
			if got, err := b.Incr(ctx, "n", window); err != nil || got != 1 {
				t.Fatalf("Incr in a new window = %d, %v; want 1", got, err)
			}
		})
	})

	t.Run("incr is atomic", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		var seen sync.Map
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 25 {
					n, err := b.Incr(t.Context(), "n", time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if _, dup := seen.LoadOrStore(n, true); dup {
						t.Errorf("Incr returned %d twice", n)
					}
				}
			})
		}
		wg.Wait()
		expectValue(t, b, "n", "500")
	})

	t.Run("incr of a value that is not a counter fails", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		must(t, b.Set(t.Context(), "k", []byte("text"), time.Minute))
		if _, err := b.Incr(t.Context(), "k", time.Minute); err == nil {
			t.Fatal("Incr of a non-integer value succeeded")
		}
	})

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		must(t, b.Ping(t.Context()))
		c := cache.New(b, cache.Options{})
		must(t, c.Check(t.Context()))
	})

	t.Run("GetOrLoad collapses concurrent misses into one load", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		reg := prometheus.NewRegistry()
		c := cache.New(b, cache.Options{Registerer: reg})
		var loads atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) ([]byte, error) {
			loads.Add(1)
			<-release
			return []byte("loaded"), nil
		}
		var wg sync.WaitGroup
		var started sync.WaitGroup
		for range 50 {
			started.Add(1)
			wg.Go(func() {
				started.Done()
				val, _, err := c.GetOrLoad(t.Context(), "k", time.Minute, load)
				if err != nil || string(val) != "loaded" {
					t.Errorf("GetOrLoad = %q, %v", val, err)
				}
			})
		}
		started.Wait()
		time.Sleep(100 * time.Millisecond) // let every caller reach the flight
		close(release)
		wg.Wait()
		if got := loads.Load(); got != 1 {
			t.Fatalf("50 concurrent misses made %d loads, want 1", got)
		}
		val, hit, err := c.GetOrLoad(t.Context(), "k", time.Minute, load)
		if err != nil || !hit || string(val) != "loaded" || loads.Load() != 1 {
			t.Fatalf("after the load: GetOrLoad = %q hit=%v err=%v, loads=%d", val, hit, err, loads.Load())
		}
		if got := counter(t, reg, "plaza_cache_loads_total"); got != 1 {
			t.Fatalf("loads metric = %v, want 1", got)
		}
		if got := counter(t, reg, "plaza_cache_hits_total"); got < 1 {
			t.Fatalf("hits metric = %v, want >= 1", got)
		}
	})

	t.Run("a load error is returned and not cached", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		c := cache.New(b, cache.Options{})
		boom := errors.New("boom")
		calls := 0
		load := func(context.Context) ([]byte, error) {
			calls++
			if calls == 1 {
				return nil, boom
			}
			return []byte("ok"), nil
		}
		if _, _, err := c.GetOrLoad(t.Context(), "k", time.Minute, load); !errors.Is(err, boom) {
			t.Fatalf("GetOrLoad = %v, want the load's error", err)
		}
		if _, ok := c.Get(t.Context(), "k"); ok {
			t.Fatal("the failed load was cached")
		}
		val, hit, err := c.GetOrLoad(t.Context(), "k", time.Minute, load)
		if err != nil || hit || string(val) != "ok" || calls != 2 {
			t.Fatalf("retry: GetOrLoad = %q hit=%v err=%v after %d calls", val, hit, err, calls)
		}
	})

	t.Run("a load that panics is an error, not a crash", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		c := cache.New(b, cache.Options{Logger: quiet})
		_, _, err := c.GetOrLoad(t.Context(), "k", time.Minute, func(context.Context) ([]byte, error) { panic("bad") })
		if plaza.ErrorCodeOf(err) != plaza.EInternal {
			t.Fatalf("GetOrLoad = %v, want an internal error", err)
		}
	})

	t.Run("a caller that gives up does not cancel the load for the others", func(t *testing.T) {
		t.Parallel()
		b, _ := be.open(t)
		c := cache.New(b, cache.Options{})
		release := make(chan struct{})
		load := func(ctx context.Context) ([]byte, error) {
			select {
			case <-release:
				return []byte("v"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		impatient := make(chan error, 1)
		go func() {
			_, _, err := c.GetOrLoad(ctx, "k", time.Minute, load)
			impatient <- err
		}()
		patient := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond)
			_, _, err := c.GetOrLoad(t.Context(), "k", time.Minute, load)
			patient <- err
		}()
		time.Sleep(100 * time.Millisecond)
		cancel()
		if err := <-impatient; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v, want context.Canceled", err)
		}
		close(release)
		if err := <-patient; err != nil {
			t.Fatalf("other caller got %v", err)
		}
		if val, ok := c.Get(t.Context(), "k"); !ok || string(val) != "v" {
			t.Fatalf("Get after the load = %q, %v", val, ok)
		}
	})

	t.Run("a delete on one instance drops the key from every instance's local tier", func(t *testing.T) {
		t.Parallel()
		b, peer := be.open(t)
		busFor := be.openBus(t)
		// LocalTTL is long so that only an invalidation can make the local copy go.
		opts := cache.Options{LocalSize: 100, LocalTTL: time.Minute}
		optsA, optsB := opts, opts
		optsA.Bus, optsB.Bus = busFor(), busFor()
		a := cache.New(b, optsA)
		other := peer()
		c := cache.New(other, optsB)
		t.Cleanup(func() { a.Close(); c.Close() })
		ctx, stop := context.WithCancel(t.Context())
		runs := make(chan error, 2)
		go func() { runs <- a.Run(ctx) }()
		go func() { runs <- c.Run(ctx) }()

		// The local tier is used only once Run listens for invalidations.
		for _, r := range []*cache.Cache{a, c} {
			select {
			case <-r.Ready():
			case <-time.After(waitFor):
				t.Fatal("Run never became ready")
			}
		}
		a.Set(t.Context(), "k", []byte("v1"), time.Minute)
		if val, ok := c.Get(t.Context(), "k"); !ok || string(val) != "v1" {
			t.Fatalf("instance B: Get = %q, %v", val, ok)
		}
		// B now answers from its local tier, whatever the backend holds.
		must(t, other.Set(t.Context(), "k", []byte("v2"), time.Minute))
		if val, ok := c.Get(t.Context(), "k"); !ok || string(val) != "v1" {
			t.Fatalf("instance B: Get = %q, %v; want v1 from the local tier", val, ok)
		}
		// One Delete on A reaches B; the bus delivers it asynchronously.
		must(t, a.Delete(t.Context(), "k"))
		deadline := time.Now().Add(waitFor)
		for {
			if _, ok := c.Get(t.Context(), "k"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("instance B still has the key after A deleted it")
			}
			time.Sleep(time.Millisecond)
		}
		if _, ok := a.Get(t.Context(), "k"); ok {
			t.Fatal("instance A still has the key after deleting it")
		}
		stop()
		for range 2 {
			if err := <-runs; err != nil {
				t.Fatalf("Run = %v, want nil after cancel", err)
			}
		}
	})
}

func TestMemoryEvictsLeastRecentlyUsedPastItsBound(t *testing.T) {
	t.Parallel()
	b := cache.NewMemory(3)
	defer b.Close()
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		must(t, b.Set(ctx, k, []byte(k), time.Minute))
	}
	expectValue(t, b, "a", "a") // a is now more recent than b
	must(t, b.Set(ctx, "d", []byte("d"), time.Minute))
	expectMissing(t, b, "b")
	for _, k := range []string{"a", "c", "d"} {
		expectValue(t, b, k, k)
	}
	for i := range 100 {
		must(t, b.Set(ctx, fmt.Sprint("k", i), []byte("v"), time.Minute))
	}
	present := 0
	for i := range 100 {
		if _, ok, _ := b.Get(ctx, fmt.Sprint("k", i)); ok {
			present++
		}
	}
	if present != 3 {
		t.Fatalf("%d of 100 entries kept, want the bound of 3", present)
	}
}

func TestLocalTierServesWithinLocalTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := cache.NewMemory(100)
		reg := prometheus.NewRegistry()
		c := cache.New(b, cache.Options{LocalSize: 10, LocalTTL: 200 * time.Millisecond, Registerer: reg})
		defer c.Close()
		c.Set(t.Context(), "k", []byte("v1"), time.Minute)
		must(t, b.Set(t.Context(), "k", []byte("v2"), time.Minute)) // behind the local tier's back
		time.Sleep(199 * time.Millisecond)
		if val, _ := c.Get(t.Context(), "k"); string(val) != "v1" {
			t.Fatalf("Get = %q, want v1 from the local tier", val)
		}
		time.Sleep(2 * time.Millisecond)
		if val, _ := c.Get(t.Context(), "k"); string(val) != "v2" {
			t.Fatalf("Get after LocalTTL = %q, want v2 from the backend", val)
		}
		if got := counter(t, reg, "plaza_cache_hits_total"); got != 2 {
			t.Fatalf("hits = %v, want 2", got)
		}
	})
}

// TestRedisOutageIsAMissAndRecovers kills the cache's own Redis server: reads become
// misses, GetOrLoad still answers from the source, Check reports the outage, and once the
// server is back the same Cache works again.
func TestRedisOutageIsAMissAndRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts, err := cache.ParseRedisURL("redis://" + srv.Addr + "/0")
	must(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	reg := prometheus.NewRegistry()
	c := cache.New(cache.NewRedis(client, "test:outage:"), cache.Options{Registerer: reg, Logger: quiet})
	defer c.Close()
	ctx := t.Context()

	c.Set(ctx, "k", []byte("v"), time.Minute)
	if val, ok := c.Get(ctx, "k"); !ok || string(val) != "v" {
		t.Fatalf("Get = %q, %v", val, ok)
	}

	srv.Kill()
	if _, ok := c.Get(ctx, "k"); ok {
		t.Fatal("Get with Redis down was a hit")
	}
	val, hit, err := c.GetOrLoad(ctx, "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("from source"), nil })
	if err != nil || hit || string(val) != "from source" {
		t.Fatalf("GetOrLoad with Redis down = %q hit=%v err=%v", val, hit, err)
	}
	if err := c.Check(ctx); plaza.ErrorCodeOf(err) != plaza.EUnavailable {
		t.Fatalf("Check with Redis down = %v, want an unavailable error", err)
	}
	if _, err := c.Incr(ctx, "n", time.Minute); err == nil {
		t.Fatal("Incr with Redis down succeeded")
	}
	if got := counter(t, reg, "plaza_cache_errors_total"); got < 3 {
		t.Fatalf("errors metric = %v, want >= 3", got)
	}

	srv.Restart()
	deadline := time.Now().Add(waitFor)
	for c.Check(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Check after restart: %v", c.Check(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Set(ctx, "k", []byte("again"), time.Minute)
	if val, ok := c.Get(ctx, "k"); !ok || string(val) != "again" {
		t.Fatalf("Get after restart = %q, %v", val, ok)
	}
}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	opts, err := cache.ParseRedisURL("redis://user:s3cret@cache.internal:6380/2")
	must(t, err)
	if opts.Addr != "cache.internal:6380" || opts.DB != 2 || opts.Username != "user" || opts.Password != "s3cret" || !opts.ContextTimeoutEnabled {
		t.Fatalf("options = %+v", opts)
	}
	for _, raw := range []string{
		"",
		"cache.internal:6379",
		"http://user:s3cret@cache.internal:6379",
		"redis://user:s3cret@cache.internal:port/0",
		"redis://user:s3cret@cache.internal:6379/notadb",
		"redis://user:s3cret@cache.internal:6379/0?nosuchoption=s3cret",
		"redis://user:s3cret@cache.internal:6379/%zz",
	} {
		_, err := cache.ParseRedisURL(raw)
		if err == nil {
			t.Errorf("ParseRedisURL(%q) succeeded", raw)
			continue
		}
		// The caller names the variable; the message must not name one itself, or it
		// reads "REDIS_URL: REDIS_URL is…".
		if msg := err.Error(); strings.Contains(msg, "REDIS_URL") || !strings.Contains(msg, "expected") || strings.Contains(msg, "s3cret") {
			t.Errorf("ParseRedisURL(%q) = %q: want what is expected, never the password or a variable name", raw, msg)
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expectValue(t *testing.T, b cache.Backend, key, want string) []byte {
	t.Helper()
	val, ok, err := b.Get(t.Context(), key)
	if err != nil || !ok || string(val) != want {
		t.Fatalf("Get(%q) = %q, %v, %v; want %q", key, val, ok, err, want)
	}
	return val
}

func expectMissing(t *testing.T, b cache.Backend, key string) {
	t.Helper()
	if val, ok, err := b.Get(t.Context(), key); ok || err != nil {
		t.Fatalf("Get(%q) = %q, %v, %v; want a miss", key, val, ok, err)
	}
}

// counter sums every series of the named counter.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	must(t, err)
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func randomName() string { return strings.ToLower(rand.Text()) }
