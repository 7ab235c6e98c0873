package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jellydator/ttlcache/v3"
)

// NewMemory returns a backend in this process, holding at most maxEntries entries: past
// that the least recently used one is evicted. Counters are stored as decimal text, as
// Redis stores them, so Get sees the same bytes on both backends.
func NewMemory(maxEntries int) Backend {
	if maxEntries <= 0 {
		maxEntries = 10_000
	}
	return &memory{store: newTTLCache[[]byte](maxEntries)}
}

type memory struct {
	// mu serializes writes so Incr's read-modify-write cannot interleave with another
	// write of the same key; reads go straight to the (internally locked) ttlcache.
	mu    sync.Mutex
	store *ttlCache[[]byte]
}

func (m *memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	item := m.store.c.Get(key)
	if item == nil {
		return nil, false, nil
	}
	// The stored slice itself, clipped so that an append copies: values are written
	// once (Set and Incr store new slices) and readers only read them.
	return slices.Clip(item.Value()), true, nil
}

func (m *memory) GetMany(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	vals, ok := make([][]byte, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		vals[i], ok[i], _ = m.Get(ctx, k)
	}
	return vals, ok, nil
}

func (m *memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store.c.Set(key, bytes.Clone(val), itemTTL(ttl))
	return nil
}

func (m *memory) Delete(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		m.store.c.Delete(k)
	}
	return nil
}

func (m *memory) DeleteUnchanged(_ context.Context, keys []string, digests []Digest) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var deleted []string
	for i, k := range keys {
		if item := m.store.c.Get(k); item != nil && DigestOf(item.Value()) == digests[i] {
			m.store.c.Delete(k)
			deleted = append(deleted, k)
		}
	}
	return deleted, nil
}

func (m *memory) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	left := itemTTL(ttl)
	if item := m.store.c.Get(key); item != nil {
		cur, err := strconv.ParseInt(string(item.Value()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cache: incr %q: value is not an integer", key)
		}
		n = cur
		// The window was fixed when the counter was created: keep its expiry. A key
		// without one (set by Set without TTL) gets ttl, as EXPIRE NX does on Redis.
		if exp := item.ExpiresAt(); !exp.IsZero() {
			left = time.Until(exp)
			if left <= 0 {
				n, left = 0, itemTTL(ttl)
			}
		}
	}
	n++
	m.store.c.Set(key, strconv.AppendInt(nil, n, 10), left)
	return n, nil
}

func (m *memory) Ping(context.Context) error {
	if m.store.closed() {
		return errClosed
	}
	return nil
}

func (m *memory) Close() error {
	m.store.close()
	return nil
}

var errClosed = errors.New("cache: closed")

// itemTTL maps our "ttl <= 0 means no expiry" to ttlcache's.
func itemTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return ttlcache.NoTTL
	}
	return ttl
}

// ttlCache is a ttlcache bounded by entries, whose expired items are removed by
// ttlcache's own cleaner rather than only when touched or evicted.
type ttlCache[V any] struct {
	c       *ttlcache.Cache[string, V]
	done    chan struct{}
	closing sync.Once
	isDone  chan struct{}
}

func newTTLCache[V any](capacity int) *ttlCache[V] {
	t := &ttlCache[V]{
		// Reading does not extend an entry's life: a TTL is a promise about staleness.
		c: ttlcache.New(
			ttlcache.WithCapacity[string, V](uint64(capacity)),
			ttlcache.WithDisableTouchOnHit[string, V](),
		),
		done:   make(chan struct{}),
		isDone: make(chan struct{}),
	}
	go func() {
		defer close(t.done)
		t.c.Start()
	}()
	return t
}

func (t *ttlCache[V]) closed() bool {
	select {
	case <-t.isDone:
		return true
	default:
		return false
	}
}

// close stops the cleaner. ttlcache's Stop is a no-op until Start has begun, so it is
// repeated until the cleaner goroutine has actually returned.
func (t *ttlCache[V]) close() {
	t.closing.Do(func() {
		close(t.isDone)
		for {
			t.c.Stop()
			select {
			case <-t.done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
}
