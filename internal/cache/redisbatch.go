package cache

import (
	"context"
	"sync"
	"time"
)

// getBatches joins concurrent GetMany calls on one Redis backend into shared pipelines
// (natural batching): a call finding no pipeline in flight sends its own at once; calls
// arriving while one is in flight wait together and go as the next pipeline, each key
// asked once however many callers want it. At low load nothing waits longer than one
// round trip; under load, one round trip (two system calls here and two in Redis) serves
// every caller that arrived during the previous one. Every authenticated request reads
// its token's revocation marks this way.
//
// A batched read starts after each of its callers called, so it sees every write that
// was acknowledged before any of them asked: the same guarantee as a read of one's own.
type getBatches struct {
	run func(ctx context.Context, keys []string) ([][]byte, []bool, error)

	mu   sync.Mutex
	busy bool      // a pipeline is in flight
	next *getBatch // the callers waiting for the next one; nil when none
}

type getBatch struct {
	keys     []string
	at       map[string]int // index in keys
	deadline time.Time      // the latest of the callers' deadlines; zero: one had none
	anyNone  bool
	callers  int
	done     chan struct{}

	vals [][]byte
	ok   []bool
	err  error
}

// maxBatchWait bounds a shared pipeline whose callers set no deadline (each caller still
// leaves at its own).
const maxBatchWait = 5 * time.Second

func (g *getBatches) getMany(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		vals, ok, err := g.run(ctx, keys)
		g.release()
		return vals, ok, err
	}
	b := g.next
	if b == nil {
		b = &getBatch{at: make(map[string]int), done: make(chan struct{})}
		g.next = b
	}
	places := make([]int, len(keys))
	for i, k := range keys {
		j, ok := b.at[k]
		if !ok {
			j = len(b.keys)
			b.keys = append(b.keys, k)
			b.at[k] = j
		}
		places[i] = j
	}
	b.callers++
	if d, ok := ctx.Deadline(); !ok {
		b.anyNone = true
	} else if d.After(b.deadline) {
		b.deadline = d
	}
	g.mu.Unlock()

	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if b.err != nil {
		return nil, nil, b.err
	}
	vals, ok := make([][]byte, len(keys)), make([]bool, len(keys))
	for i, j := range places {
		if b.ok[j] {
			// Each caller gets its own copy: callers may keep or change what they read.
			vals[i], ok[i] = append([]byte(nil), b.vals[j]...), true
		}
	}
	return vals, ok, nil
}

// release ends a pipeline: with callers waiting, a goroutine sends their batches until
// none is left; otherwise the next caller sends its own.
func (g *getBatches) release() {
	g.mu.Lock()
	if g.next == nil {
		g.busy = false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go g.drain()
}

func (g *getBatches) drain() {
	for {
		g.mu.Lock()
		b := g.next
		g.next = nil
		if b == nil {
			g.busy = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		deadline := b.deadline
		if b.anyNone || deadline.IsZero() {
			deadline = time.Now().Add(maxBatchWait)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b.vals, b.ok, b.err = g.run(ctx, b.keys)
		cancel()
		close(b.done)
	}
}
