package cache_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/redistest"
)

// TestADeletionIsAppliedOnce: with Redis and a second invalidation channel (PostgreSQL's
// notifications in production), every deletion reaches each instance twice. The copy that
// arrives second must not undo the reads made since the first: B, having reloaded the
// key, keeps serving it from both tiers, and A's own copy coming back spares A's reload
// too. A later deletion of the same key is still applied, on whichever channel.
func TestADeletionIsAppliedOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	notes := &loopback{}
	var backend cache.Backend
	open := func() *cache.Cache {
		opts, err := cache.ParseRedisURL(srv.URL())
		must(t, err)
		client := redis.NewClient(opts)
		b := bus.NewRedis(client, bus.RedisOptions{Prefix: "test:once:bus:", Block: 200 * time.Millisecond, Logger: quiet})
		backend = cache.NewRedis(client, "test:once:")
		c := cache.New(backend, cache.Options{Bus: b, Notifications: notes, LocalSize: 100, LocalTTL: time.Minute, Logger: quiet})
		t.Cleanup(func() { c.Close(); b.Close(); client.Close() })
		runForTheTest(t, c)
		return c
	}
	a, b := open(), open()
	src := newVersioned(t, a)

	for _, reader := range []struct {
		name string
		c    *cache.Cache
	}{{"A (the writer)", a}, {"B (another instance)", b}} { // A first: B, once it has filled the key, deletes it again on A's next deletion (Cache.received)
		src.read(reader.c)
		if _, hit := src.read(reader.c); !hit {
			t.Fatalf("%s: the second read was not a hit", reader.name)
		}
		notes.hold()
		want := src.write()
		// The bus's copy arrives: the reader loads the new version and keeps it.
		eventually(t, reader.name+" reads the new version", func() bool {
			got, _ := src.read(reader.c)
			return got == want
		})
		if got, hit := src.read(reader.c); got != want || !hit {
			t.Fatalf("%s: read %d (hit %v) after loading %d", reader.name, got, hit, want)
		}
		// Then the notification's copy of the same deletion.
		if n := notes.release(); n == 0 {
			t.Fatal("the write sent no notification")
		}
		if got, hit := src.read(reader.c); got != want || !hit {
			t.Fatalf("%s: read %d (hit %v) after the second copy of the deletion; want %d from its cache", reader.name, got, hit, want)
		}
		if _, ok, err := backend.Get(t.Context(), versionedKey); err != nil || !ok {
			t.Fatalf("%s: the key left Redis after the second copy of its deletion (%v)", reader.name, err)
		}
	}

	// A later deletion of the same key is applied again: what is remembered of the first
	// does not swallow it.
	for _, held := range []bool{false, true} {
		src.read(b)
		if held {
			notes.hold()
		}
		want := src.write()
		eventually(t, "B reads the version of a later deletion", func() bool {
			got, _ := src.read(b)
			return got == want
		})
		notes.release()
	}

	// A notification in the older format (the keys alone, as a JSON array, from an
	// instance not yet upgraded) still drops them from the local tier, and only them.
	src.read(b)
	if _, hit := src.read(b); !hit {
		t.Fatal("B: the second read was not a hit")
	}
	if _, _, err := b.GetOrLoad(t.Context(), "other", time.Minute, func(context.Context) ([]byte, error) { return []byte("kept"), nil }); err != nil {
		t.Fatal(err)
	}
	must(t, backend.Set(t.Context(), versionedKey, []byte("-1"), time.Minute))
	must(t, backend.Set(t.Context(), "other", []byte("changed"), time.Minute))
	must(t, notes.Notify(t.Context(), `["`+versionedKey+`"]`))
	if got, hit := src.read(b); hit && got == src.version.Load() { // "-1" from Redis, or a reload once B deleted its recent fill again
		t.Fatalf("B served version %d from its local tier after an older instance's notification", got)
	}
	if v, ok := b.Get(t.Context(), "other"); !ok || string(v) != "kept" {
		t.Fatalf("B: other = %q, %v after a notification for another key; want kept from its local tier", v, ok)
	}
}

// eventually fails t unless cond holds within waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
	}
}

// passThrough is a backend that Cache takes for a remote one.
type passThrough struct{ cache.Backend }

// heldRedeletes is a remote backend whose DeleteUnchanged (a Cache deleting its recent
// fills again) waits, once armed, until release is closed.
type heldRedeletes struct {
	cache.Backend
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newHeldRedeletes(b cache.Backend) *heldRedeletes {
	return &heldRedeletes{Backend: b, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldRedeletes) DeleteUnchanged(ctx context.Context, keys []string, digests []cache.Digest) ([]string, error) {
	if h.armed.CompareAndSwap(true, false) {
		close(h.entered)
		<-h.release
	}
	return h.Backend.DeleteUnchanged(ctx, keys, digests)
}

// await waits until DeleteUnchanged is held.
func (h *heldRedeletes) await(t *testing.T) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(waitFor):
		t.Fatal("the recent fill was never deleted again")
	}
}

// TestAnInvalidationDoesNotUndoTheReloadItCaused: an instance applying another's deletion
// deletes its own recent fill of the key from the backend again, but only the value it
// stored: a read that misses meanwhile and fills the backend afresh keeps what it stored
// (otherwise the next readers miss again, as TestCatalogAcrossInstances once saw).
func TestAnInvalidationDoesNotUndoTheReloadItCaused(t *testing.T) {
	t.Parallel()
	shared, _, open := oneBackend(t)
	a := open(passThrough{shared})
	held := newHeldRedeletes(shared)
	b := open(held)
	src := newVersioned(t, a)

	src.read(b) // B fills the backend: a recent fill, which A's deletion makes B delete again
	held.armed.Store(true)
	want := src.write()
	held.await(t)
	if got, _ := src.read(b); got != want { // a read meanwhile: B reloads and fills afresh
		t.Fatalf("B read %d after A's deletion, want %d", got, want)
	}
	close(held.release)
	eventually(t, "B's delete of its old fill is done", func() bool {
		v, ok, _ := shared.Get(t.Context(), versionedKey)
		return !ok || string(v) == strconv.FormatInt(want, 10)
	})
	time.Sleep(50 * time.Millisecond) // for a delete that should not come
	if got, hit := src.read(b); got != want || !hit {
		t.Fatalf("B read %d (hit %v); want %d from its cache", got, hit, want)
	}
	if v, ok, err := shared.Get(t.Context(), versionedKey); err != nil || !ok || string(v) != strconv.FormatInt(want, 10) {
		t.Fatalf("the backend holds %q (%v, %v); want version %d, reloaded", v, ok, err, want)
	}
}

// TestAFillThatLostTheRaceLeavesNoLocalCopy: instance Y's load began before O's write
// and stored the old value after O's delete (the race Cache.received closes). X, which
// had already applied O's deletion, reads that old value from the backend before Y deletes
// it again, and keeps it locally: Y's deletion of its fill is announced, and X drops the
// copy, where it would otherwise serve it for its LocalTTL (a minute here).
func TestAFillThatLostTheRaceLeavesNoLocalCopy(t *testing.T) {
	t.Parallel()
	shared, notes, open := oneBackend(t)
	o := open(passThrough{shared})
	x := open(passThrough{shared})
	held := newHeldRedeletes(shared)
	y := open(held)

	notes.hold() // O's announcement reaches nobody until Y has stored the old value
	loadDuring(t, y, "k", func() { must(t, o.Delete(t.Context(), "k")) })
	if v, ok, _ := shared.Get(t.Context(), "k"); !ok || string(v) != "old" {
		t.Fatalf("Y's late fill is not in the backend (%q, %v): the race was not set up", v, ok)
	}
	held.armed.Store(true)
	notes.release() // X applies O's deletion, then Y, whose delete of its fill waits
	held.await(t)
	if v, _, err := x.GetOrLoad(t.Context(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("new"), nil }); err != nil || string(v) != "old" {
		t.Fatalf("X read %q (%v) before Y's delete; the race was not set up", v, err)
	}
	close(held.release)
	eventually(t, "X stops serving the old value", func() bool {
		v, _, err := x.GetOrLoad(t.Context(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("new"), nil })
		return err == nil && string(v) == "new"
	})
}

// TestADeleteOutlivesItsCaller: a Delete whose caller has gone (a client that
// disconnected after its write committed) still deletes the key and tells every instance.
func TestADeleteOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	shared, _, open := oneBackend(t)
	a, b := open(passThrough{shared}), open(passThrough{shared})
	src := newVersioned(t, a)
	src.read(b)
	if _, hit := src.read(b); !hit {
		t.Fatal("B: the second read was not a hit")
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	want := src.version.Add(1)
	_ = a.Delete(gone, versionedKey)
	if _, ok, _ := shared.Get(t.Context(), versionedKey); ok {
		t.Fatal("the key is still in the backend")
	}
	if got, _ := src.read(b); got != want {
		t.Fatalf("B read %d after A's Delete, want %d", got, want)
	}
}

// oneBackend returns a backend that the caches open opens share as instances share Redis
// (open takes it wrapped: Cache takes an in-process backend it did not make for a remote
// one), with notifications between them and a LocalTTL of a minute; each runs until the
// test ends.
func oneBackend(t *testing.T) (cache.Backend, *loopback, func(cache.Backend) *cache.Cache) {
	shared := cache.NewMemory(100)
	t.Cleanup(func() { shared.Close() })
	notes := &loopback{}
	return shared, notes, func(b cache.Backend) *cache.Cache {
		c := cache.New(b, cache.Options{Notifications: notes, LocalSize: 100, LocalTTL: time.Minute, Logger: quiet})
		t.Cleanup(func() { c.Close() })
		runForTheTest(t, c)
		return c
	}
}

// runForTheTest runs c.Run until the test ends (before the cleanups registered earlier, such
// as c's Close), once it listens.
func runForTheTest(t *testing.T, c *cache.Cache) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() { stop(); <-done })
	running(t, ctx, c, done)
}
