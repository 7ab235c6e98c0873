package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"plaza/internal/cache"
)

// heldDeletes is a remote backend (not the in-process one, so Cache batches its deletes)
// that counts Delete calls, holds the first until release is closed, and fails the later
// ones with err.
type heldDeletes struct {
	cache.Backend
	mu      sync.Mutex
	calls   [][]string
	entered chan struct{}
	release chan struct{}
	err     error
}

func (h *heldDeletes) Delete(ctx context.Context, keys ...string) error {
	h.mu.Lock()
	h.calls = append(h.calls, keys)
	first := len(h.calls) == 1
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.release
	}
	if err := h.Backend.Delete(ctx, keys...); err != nil || first {
		return err
	}
	return h.err
}

// TestDeletesShareTheBackend: Deletes made while one is in flight share the next backend
// delete (each key once); every caller returns only once the key is gone, and a failed
// shared delete fails every caller of it.
func TestDeletesShareTheBackend(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		h := &heldDeletes{Backend: cache.NewMemory(100), entered: make(chan struct{}), release: make(chan struct{})}
		c := cache.New(h, cache.Options{Timeout: waitFor})
		t.Cleanup(func() { c.Close() })
		ctx := t.Context()
		if err := c.Set(ctx, "categories", []byte("tree"), 0); err != nil {
			t.Fatal(err)
		}
		first := make(chan error, 1)
		go func() { first <- c.Delete(ctx, "categories") }()
		<-h.entered
		if fail {
			h.err = errors.New("redis: connection refused")
		}
		const n = 8
		errs := make(chan error, n)
		for range n {
			go func() { errs <- c.Delete(ctx, "categories") }()
		}
		time.Sleep(20 * time.Millisecond) // let them queue behind the first
		close(h.release)
		if err := <-first; err != nil {
			t.Fatalf("the first delete: %v", err)
		}
		for range n {
			err := <-errs
			if fail != (err != nil) {
				t.Fatalf("fail %v: a delete sharing the second backend call returned %v", fail, err)
			}
		}
		h.mu.Lock()
		calls := len(h.calls)
		h.mu.Unlock()
		if calls >= n+1 {
			t.Errorf("%d deletes made %d backend calls; want them shared", n+1, calls)
		}
		if _, ok, _ := h.Backend.Get(ctx, "categories"); ok {
			t.Error("the key is still in the backend")
		}
	}
}
