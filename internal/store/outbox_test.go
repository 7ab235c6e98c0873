package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// flakyBus fails its first failures publishes, then records what it is given.
type flakyBus struct {
	mu       sync.Mutex
	failures int
	got      []plaza.Event
	streams  []string
	arrived  chan struct{}
}

func (b *flakyBus) Publish(_ context.Context, stream string, ev plaza.Event) (plaza.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures > 0 {
		b.failures--
		return plaza.Event{}, plaza.Errorf(plaza.EUnavailable, "bus down")
	}
	b.got = append(b.got, ev)
	b.streams = append(b.streams, stream)
	select {
	case b.arrived <- struct{}{}:
	default:
	}
	return ev, nil
}

func outgoing(t *testing.T, typ string, p catalog.Product) plaza.Outgoing {
	t.Helper()
	ev, err := plaza.NewEvent(typ, "admin-1", p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return plaza.Outgoing{Stream: plaza.StreamCatalog, Event: ev}
}

// TestOutboxSurvivesACrashAndKeepsOrder: events stored with their writes while no relay
// runs (a process that crashed right after its commits) wait in the outbox; a write that
// fails leaves none. A relay started later publishes every one, in commit order, through
// a bus that fails at first, and empties the outbox.
func TestOutboxSurvivesACrashAndKeepsOrder(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		p := product("Outbox mug", "home", "kitchen", 900, 3, time.Now())
		var want []plaza.Outgoing
		add := func(o plaza.Outgoing) plaza.Outgoing { want = append(want, o); return o }
		if err := s.Create(ctx, p, add(outgoing(t, catalog.EventCreated, p))); err != nil {
			t.Fatal(err)
		}
		p.Stock = 2
		up, err := s.Update(ctx, p, 1, add(outgoing(t, catalog.EventUpdated, p)))
		if err != nil {
			t.Fatal(err)
		}
		// A write that fails takes its event with it.
		if _, err := s.Update(ctx, p, 1, outgoing(t, catalog.EventUpdated, p)); plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
			t.Fatalf("stale update: %v", err)
		}
		if err := s.Delete(ctx, p.ID, up.Version, add(outgoing(t, catalog.EventDeleted, up))); err != nil {
			t.Fatal(err)
		}
		if n, err := db.OutboxLen(ctx); err != nil || n != 3 {
			t.Fatalf("outbox holds %d events (%v), want 3", n, err)
		}

		bus := &flakyBus{failures: 3, arrived: make(chan struct{}, 1)}
		rctx, stop := context.WithCancel(ctx)
		relayed := make(chan error, 1)
		go func() { relayed <- db.RelayOutbox(rctx, bus, nil) }()
		deadline := time.After(30 * time.Second) // a hang guard
		for {
			if n, err := db.OutboxLen(ctx); err == nil && n == 0 {
				break
			}
			select {
			case <-bus.arrived:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatal("the relay never emptied the outbox")
			}
		}
		stop()
		if err := <-relayed; err != nil {
			t.Fatalf("RelayOutbox = %v after cancel", err)
		}
		bus.mu.Lock()
		defer bus.mu.Unlock()
		if len(bus.got) != len(want) {
			t.Fatalf("published %d events, want %d", len(bus.got), len(want))
		}
		for i, ev := range bus.got {
			if ev.Key != want[i].Event.Key || ev.Type != want[i].Event.Type || bus.streams[i] != plaza.StreamCatalog {
				t.Errorf("event %d: %s %s on %s; want %s %s", i, ev.Type, ev.Key, bus.streams[i], want[i].Event.Type, want[i].Event.Key)
			}
		}
	})
}

// TestOutboxRelayStopsAtAFailure: while the bus fails, nothing is lost and nothing
// overtakes the failed event; the relay keeps retrying until ctx ends.
func TestOutboxRelayStopsAtAFailure(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		p := product("Never published", "home", "", 100, 1, time.Now())
		if err := db.Products().Create(ctx, p, outgoing(t, catalog.EventCreated, p)); err != nil {
			t.Fatal(err)
		}
		bus := &flakyBus{failures: 1 << 30, arrived: make(chan struct{}, 1)}
		rctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
		defer stop()
		if err := db.RelayOutbox(rctx, bus, nil); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if n, err := db.OutboxLen(ctx); err != nil || n != 1 {
			t.Fatalf("outbox holds %d events (%v) after failed publishes, want 1", n, err)
		}
		if bus.failures == 1<<30 {
			t.Fatal("the relay never tried to publish")
		}
	})
}

// batchBus publishes batches (store.ManyPublisher) into a flakyBus; a batch fails at its
// event number failAt (counting every batch's events), once.
type batchBus struct {
	*flakyBus
	failAt  int
	batches int
}

func (b *batchBus) PublishMany(ctx context.Context, evs []plaza.Outgoing) (int, error) {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	for i, o := range evs {
		b.mu.Lock()
		fail := b.failAt == len(b.got)
		if fail {
			b.failAt = -1
		}
		b.mu.Unlock()
		if fail {
			return i, plaza.Errorf(plaza.EUnavailable, "bus down")
		}
		if _, err := b.Publish(ctx, o.Stream, o.Event); err != nil {
			return i, err
		}
	}
	return len(evs), nil
}

// TestOutboxRelayPublishesAgainWhatABusLost: a bus that acknowledged events can lose them
// (a Redis without persistence that dies before a slow reader read them comes back
// empty). After the failure that follows, the relay publishes again what it published
// just before, so every committed event reaches the bus in the end.
func TestOutboxRelayPublishesAgainWhatABusLost(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		bus := &flakyBus{arrived: make(chan struct{}, 1)}
		rctx, stop := context.WithCancel(ctx)
		relayed := make(chan error, 1)
		go func() { relayed <- db.RelayOutbox(rctx, bus, nil) }()
		defer func() { stop(); <-relayed }()
		var keys []string
		create := func() {
			p := product(fmt.Sprintf("Lost mug %d", len(keys)), "home", "kitchen", 900, 3, time.Now())
			ev := outgoing(t, catalog.EventCreated, p)
			if err := db.Products().Create(ctx, p, ev); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, ev.Event.Key)
		}
		has := func() map[string]bool {
			bus.mu.Lock()
			defer bus.mu.Unlock()
			m := map[string]bool{}
			for _, ev := range bus.got {
				m[ev.Key] = true
			}
			return m
		}
		waitAll := func(what string) {
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				got := has()
				all := true
				for _, k := range keys {
					all = all && got[k]
				}
				if all {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the bus holds %d of %d events", what, len(got), len(keys))
				}
			}
		}
		for range 3 {
			create()
		}
		waitAll("before the loss")
		bus.mu.Lock()
		bus.got, bus.streams = bus.got[:1], bus.streams[:1] // the bus died and lost two
		bus.failures = 1                                    // and the next publish finds it down
		bus.mu.Unlock()
		create()
		waitAll("after the failure")
	})
}

// TestOutboxRelayPublishesBatches: through a bus that publishes a batch at once, the relay
// publishes every event, in commit order; a batch failing part way is taken up again from
// the event that failed, after the events published just before the failure are published
// again (the bus may have lost them; readers drop repeated keys), and nothing is deleted
// unpublished.
func TestOutboxRelayPublishesBatches(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		var keys []string
		for i := range 7 {
			p := product(fmt.Sprintf("Batch mug %d", i), "home", "kitchen", 900, 3, time.Now())
			ev := outgoing(t, catalog.EventCreated, p)
			if err := db.Products().Create(ctx, p, ev); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, ev.Event.Key)
		}
		bus := &batchBus{flakyBus: &flakyBus{arrived: make(chan struct{}, 1)}, failAt: 3}
		rctx, stop := context.WithCancel(ctx)
		relayed := make(chan error, 1)
		go func() { relayed <- db.RelayOutbox(rctx, bus, nil) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if n, err := db.OutboxLen(ctx); err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the relay never emptied the outbox")
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		if err := <-relayed; err != nil {
			t.Fatal(err)
		}
		bus.mu.Lock()
		defer bus.mu.Unlock()
		var got []string
		for _, ev := range bus.got {
			got = append(got, ev.Key)
		}
		if want := append(slices.Clone(keys[:3]), keys...); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("published %v,\nwant      %v (in commit order, the three before the failure again)", got, want)
		}
		if bus.batches < 2 {
			t.Fatalf("%d batches: the failed one was not taken up again", bus.batches)
		}
	})
}
