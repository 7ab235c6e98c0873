package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/redistest"
)

// holdFirstPipeline is a go-redis hook that counts pipelines of GETs and holds the first
// one until release is closed.
type holdFirstPipeline struct {
	pipelines atomic.Int32
	entered   chan struct{}
	release   chan struct{}
}

func (h *holdFirstPipeline) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *holdFirstPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *holdFirstPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "get" { // a connection's handshake is a pipeline too
			return next(ctx, cmds)
		}
		if h.pipelines.Add(1) == 1 {
			close(h.entered)
			<-h.release
		}
		return next(ctx, cmds)
	}
}

// TestGetManyCallsSharePipelines: calls made while a pipeline is in flight go together as
// the next one, each key asked once; every caller gets exactly its own keys' values (a
// missing key as missing, a key asked twice twice), a caller whose context ends leaves
// without disturbing the others, and with nothing in flight a call goes at once.
func TestGetManyCallsSharePipelines(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redistest.URL(t))
	hook := &holdFirstPipeline{entered: make(chan struct{}), release: make(chan struct{})}
	client.AddHook(hook)
	prefix := fmt.Sprintf("test:batch:%d:", time.Now().UnixNano())
	b := NewRedis(client, prefix).(*redisBackend)
	ctx := t.Context()
	for i := range 10 {
		if err := b.Set(ctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	first := make(chan error, 1)
	go func() {
		vals, ok, err := b.GetMany(ctx, []string{"k0"})
		if err == nil && (!ok[0] || string(vals[0]) != "v0") {
			err = fmt.Errorf("k0 = %q, %v", vals[0], ok[0])
		}
		first <- err
	}()
	<-hook.entered // the first call's pipeline is in flight and held

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		keys := []string{fmt.Sprint("k", c%10), "missing", fmt.Sprint("k", (c+3)%10), fmt.Sprint("k", c%10)}
		wg.Go(func() {
			vals, ok, err := b.GetMany(ctx, keys)
			if err != nil {
				errs <- err
				return
			}
			for i, k := range keys {
				want := k != "missing"
				if ok[i] != want || (want && string(vals[i]) != "v"+k[1:]) {
					errs <- fmt.Errorf("caller %d: %s = %q, %v", c, k, vals[i], ok[i])
				}
			}
		})
	}
	// One more caller gives up while it waits.
	gone, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, _, err := b.GetMany(gone, []string{"k1"}); left <- err }()

	waitFor(t, func() bool {
		b.gets.mu.Lock()
		defer b.gets.mu.Unlock()
		return b.gets.next != nil && b.gets.next.callers == callers+1
	})
	cancel()
	if err := <-left; err != context.Canceled {
		t.Fatalf("the caller that left got %v", err)
	}
	close(hook.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := hook.pipelines.Load(); n != 2 {
		t.Fatalf("%d pipelines for %d callers that came during the first: want the first and one shared", n, callers)
	}
	// The drain ends: no batch left behind, and the next lone call is not held up.
	waitFor(t, func() bool {
		b.gets.mu.Lock()
		defer b.gets.mu.Unlock()
		return !b.gets.busy && b.gets.next == nil
	})

	// Nothing in flight: a call sends its own pipeline.
	if vals, ok, err := b.GetMany(ctx, []string{"k9"}); err != nil || !ok[0] || string(vals[0]) != "v9" {
		t.Fatalf("k9 = %q, %v, %v", vals[0], ok[0], err)
	}
	if n := hook.pipelines.Load(); n != 3 {
		t.Fatalf("%d pipelines after a lone call, want 3", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
	}
}
