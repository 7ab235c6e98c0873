package cache_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/redistest"
	"plaza/internal/redisx"
)

// TestNoStaleReadsAcrossInstances runs two caches the way two Plaza instances do: one
// Redis (a server of the test's own, with the circuit breaker on its clients) for the
// backend and the invalidation bus, a local tier in front of it on each, and a source of
// truth behind them (a version number). Instance A writes (source, then Delete, then the
// write counts as acknowledged) while instance B reads.
//
// Healthy, B stops serving the old version soon after A's acknowledgement (the figure is
// logged). With Redis killed, B never serves a stale version and never answers a hit:
// its local tier is bypassed while its invalidation stream is down. After the restart,
// B's reads are never stale and its local tier serves again.
func TestNoStaleReadsAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, stop := context.WithCancel(t.Context())
	runs := make(chan error, 2)
	open := func() (*cache.Cache, *prometheus.Registry) {
		opts, err := cache.ParseRedisURL(srv.URL())
		must(t, err)
		client := redis.NewClient(opts)
		client.AddHook(redisx.NewBreaker(redisx.BreakerOptions{Logger: quiet}))
		b := bus.NewRedis(client, bus.RedisOptions{Prefix: "test:stale:bus:", Block: 200 * time.Millisecond, Logger: quiet})
		reg := prometheus.NewRegistry()
		c := cache.New(cache.NewRedis(client, "test:stale:"), cache.Options{Bus: b, LocalSize: 100, LocalTTL: time.Minute, Logger: quiet, Registerer: reg})
		t.Cleanup(func() { c.Close(); b.Close(); client.Close() })
		running(t, ctx, c, runs)
		return c, reg
	}
	a, _ := open()
	b, regB := open()
	defer func() {
		stop()
		for range 2 {
			<-runs
		}
	}()

	src := newVersioned(t, a)
	read, write := src.read, src.write

	// Healthy: B holds the current version in its local tier before every write.
	var stale []time.Duration
	for range 50 {
		read(b)
		if _, hit := read(b); !hit {
			t.Fatal("B's second read was not a hit")
		}
		want := write()
		acked := time.Now()
		for {
			got, _ := read(b)
			if got == want {
				break
			}
			if got > want || time.Since(acked) > waitFor {
				t.Fatalf("B read version %d, want %d", got, want)
			}
			time.Sleep(100 * time.Microsecond)
		}
		stale = append(stale, time.Since(acked))
	}
	slices.Sort(stale)
	t.Logf("healthy: B served the old version for at most %s after A's acknowledgement (median %s, 50 writes)",
		stale[len(stale)-1].Round(time.Microsecond), stale[len(stale)/2].Round(time.Microsecond))

	srv.Kill()
	// B learns that its invalidation stream is gone when its reader's connection fails,
	// which can come a moment after A's first write is acknowledged: that first write
	// has the healthy bound, the window in which B may not know yet.
	want := write()
	acked := time.Now()
	var lastStale time.Duration
	for {
		got, _ := read(b)
		if got == want {
			break
		}
		lastStale = time.Since(acked)
		if lastStale > 250*time.Millisecond {
			t.Fatalf("Redis down: B still served the old version %s after A's acknowledgement", lastStale)
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Logf("Redis killed: after the first write B served the old version until %s after A's acknowledgement (0: never)", lastStale.Round(time.Microsecond))
	localHits := counter(t, regB, "plaza_cache_hits_total")
	for i := range 50 {
		want := write()
		got, hit := read(b)
		if got != want || hit {
			t.Fatalf("Redis down, write %d: B read version %d (hit %v), want %d from the source", i, got, hit, want)
		}
	}
	if got := counter(t, regB, "plaza_cache_hits_total"); got != localHits {
		t.Errorf("hits went from %v to %v while Redis was down", localHits, got)
	}

	srv.Restart()
	back := time.Now()
	for {
		want := write()
		got, _ := read(b)
		if got != want {
			t.Fatalf("Redis back: B read version %d, want %d", got, want)
		}
		if _, hit := read(b); hit {
			break
		}
		if time.Since(back) > waitFor {
			t.Fatal("B never served from the cache again after Redis came back")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("Redis back: B's cache served hits again after %s", time.Since(back).Round(time.Millisecond))
}

// versioned is the source of one cached key whose value is its version: write makes a
// new version and deletes the key through the writer's cache, as a committed write does;
// read reads it through any cache.
type versioned struct {
	t       *testing.T
	writer  *cache.Cache
	version atomic.Int64
}

const versionedKey = "product:p1"

func newVersioned(t *testing.T, writer *cache.Cache) *versioned {
	v := &versioned{t: t, writer: writer}
	v.version.Store(1)
	return v
}

func (v *versioned) load(context.Context) ([]byte, error) {
	return []byte(strconv.FormatInt(v.version.Load(), 10)), nil
}

// read returns the version c serves and whether it was a hit.
func (v *versioned) read(c *cache.Cache) (int64, bool) {
	val, hit, err := c.GetOrLoad(v.t.Context(), versionedKey, time.Minute, v.load)
	must(v.t, err)
	n, _ := strconv.ParseInt(string(val), 10, 64)
	return n, hit
}

// write makes the next version and returns it.
func (v *versioned) write() int64 {
	n := v.version.Add(1)
	_ = v.writer.Delete(v.t.Context(), versionedKey) // best effort, as after a committed write
	return n
}

// running starts c.Run, its result going to runs, and waits until it listens.
func running(t *testing.T, ctx context.Context, c *cache.Cache, runs chan<- error) {
	t.Helper()
	go func() { runs <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case <-time.After(waitFor):
		t.Fatal("Run never became ready")
	}
}
