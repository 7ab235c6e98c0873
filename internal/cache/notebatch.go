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
// pg_notify for many of them rather than one each. Each announcement carries its
// deletion's number (Cache.delSeq); a key announced twice in one batch keeps the larger.
type noteBatches struct {
	send func(ctx context.Context, keys []string, seqs []uint64) error

	mu   sync.Mutex
	busy bool
	next *noteBatch
}

type noteBatch struct {
	keys    []string
	seqs    []uint64       // seqs[i] numbers the deletion of keys[i]
	seen    map[string]int // index in keys
	callers int
	done    chan struct{}
	err     error
}

func (n *noteBatches) announce(ctx context.Context, keys []string, seq uint64, detached func() (context.Context, context.CancelFunc)) error {
	n.mu.Lock()
	if !n.busy {
		n.busy = true
		n.mu.Unlock()
		err := n.send(ctx, keys, repeated(seq, len(keys)))
		n.release(detached)
		return err
	}
	b := n.next
	if b == nil {
		b = &noteBatch{seen: map[string]int{}, done: make(chan struct{})}
		n.next = b
	}
	b.callers++
	for _, k := range keys {
		if i, ok := b.seen[k]; ok {
			b.seqs[i] = max(b.seqs[i], seq)
			continue
		}
		b.seen[k] = len(b.keys)
		b.keys = append(b.keys, k)
		b.seqs = append(b.seqs, seq)
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
			b.err = n.send(ctx, slices.Clip(b.keys), slices.Clip(b.seqs))
			cancel()
			close(b.done)
		}
	}()
}
