package redisx_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/redistest"
	"plaza/internal/redisx"
)

// hang bounds every wait below; reaching it means the breaker is broken, not slow.
const hang = 10 * time.Second

// TestBreakerOpensFailsFastAndRecovers kills a real redis-server under a client with the
// breaker: calls soon fail with ErrOpen instead of dialling, and once the server is back
// a probe closes the breaker and calls succeed again. The figures (a call's cost while
// open, how long after the restart the first call succeeds) go to the log for
// docs/reliability.md.
func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	defer client.Close()
	b := redisx.NewBreaker(redisx.BreakerOptions{Logger: slog.New(slog.DiscardHandler)})
	client.AddHook(b)
	ctx := context.Background()
	call := func() error {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		err := client.Get(ctx, "k").Err()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return err
	}
	if err := call(); err != nil || b.Open() {
		t.Fatalf("healthy Redis: %v, open %v", err, b.Open())
	}

	srv.Kill()
	failures := 0
	for deadline := time.Now().Add(hang); ; failures++ {
		err := call()
		if errors.Is(err, redisx.ErrOpen) {
			break
		}
		if err == nil {
			t.Fatal("a call succeeded on a killed Redis")
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker not open after %d failed calls", failures)
		}
	}
	if failures < redisx.DefaultBreakerFailures || failures > 2*redisx.DefaultBreakerFailures {
		t.Errorf("breaker opened after %d failures; want about %d", failures, redisx.DefaultBreakerFailures)
	}
	if !b.Open() {
		t.Error("Open() = false while calls fail with ErrOpen")
	}

	// While open, calls fail without touching the network; pipelines too.
	const n = 2000
	costs := make([]time.Duration, 0, n)
	refused := 0
	for range n {
		start := time.Now()
		err := call()
		costs = append(costs, time.Since(start))
		if errors.Is(err, redisx.ErrOpen) {
			refused++
		}
	}
	if refused < n*9/10 {
		t.Errorf("only %d of %d calls refused by the open breaker", refused, n)
	}
	if _, err := client.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); return nil }); err == nil {
		t.Error("a pipeline succeeded on a killed Redis")
	}
	slices.Sort(costs)
	t.Logf("open breaker: p50 %s, p99 %s per call (%d of %d refused)", costs[n/2], costs[n*99/100], refused, n)

	srv.Restart()
	back := time.Now()
	for call() != nil {
		if time.Since(back) > hang {
			t.Fatalf("calls still failing %s after Redis came back", hang)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("first successful call %s after Redis answered again", time.Since(back).Round(time.Millisecond))
	if b.Open() {
		t.Error("breaker still open after a successful call")
	}
}
