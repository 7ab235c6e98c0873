package cache

import (
	"context"
	"slices"
	"sync"
)

// noteBatches joins the announcements made at the same moment into shared notifications
// (natural batching, as getBatches does for reads): one announcement finding none under
// way sends its own at once; those arriving meanwhile go together as the next, each key
// once, and each caller returns when the notification carrying its keys was sent. Every
// product create drops the category tree's key, so under a burst of creates this is one
// pg_notify for many of them rather than one each.
type noteBatches struct {
	send func(ctx context.Context, keys []string) error

	mu   sync.Mutex
	busy bool
	next *noteBatch
}

type noteBatch struct {
	keys    []string
	seen    map[string]bool
	callers int
	done    chan struct{}
	err     error
}

func (n *noteBatches) announce(ctx context.Context, keys []string, detached func() (context.Context, context.CancelFunc)) error {
	n.mu.Lock()
	if !n.busy {
		n.busy = true
		n.mu.Unlock()
		err := n.send(ctx, keys)
		n.release(detached)
		return err
	}
	b := n.next
	if b == nil {
		b = &noteBatch{seen: map[string]bool{}, done: make(chan struct{})}
		n.next = b
	}
	b.callers++
	for _, k := range keys {
		if !b.seen[k] {
			b.seen[k] = true
			b.keys = append(b.keys, k)
		}
	}
	n.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release ends a send: with announcements waiting, a goroutine sends their batches
// until none is left; otherwise the next announcement sends its own.
func (n *noteBatches) release(detached func() (context.Context, context.CancelFunc)) {
	n.mu.Lock()
	if n.next == nil {
		n.busy = false
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	go func() {
		for {
			n.mu.Lock()
			b := n.next
			n.next = nil
			if b == nil {
				n.busy = false
				n.mu.Unlock()
				return
			}
			n.mu.Unlock()
			ctx, cancel := detached()
			b.err = n.send(ctx, slices.Clip(b.keys))
			cancel()
			close(b.done)
		}
	}()
}
