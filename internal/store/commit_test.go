package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// relayAll runs the relay into a fresh bus until the outbox is empty and returns what it
// published.
func relayAll(t *testing.T, db *store.DB) []plaza.Event {
	t.Helper()
	bus := &flakyBus{arrived: make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(t.Context())
	relayed := make(chan error, 1)
	go func() { relayed <- db.RelayOutbox(ctx, bus, nil) }()
	deadline := time.After(30 * time.Second) // a hang guard
	for {
		if n, err := db.OutboxLen(t.Context()); err == nil && n == 0 {
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
		t.Fatal(err)
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	return bus.got
}

// TestConcurrentCreatesAreAllDurable: creates from many callers at once, which the store
// commits in groups, are each acknowledged only once stored, readable, and carry exactly
// one event each, which the relay publishes once.
func TestConcurrentCreatesAreAllDurable(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		const n = 80
		ps := make([]catalog.Product, n)
		evs := make([]plaza.Outgoing, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			ps[i] = product(fmt.Sprintf("Group item %d", i), "home", "kitchen/mugs", int64(100+i), 1, time.Now())
			evs[i] = outgoing(t, catalog.EventCreated, ps[i])
			wg.Go(func() { errs[i] = s.Create(ctx, ps[i], evs[i]) })
		}
		wg.Wait()
		keys := map[string]int{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			got, err := s.ByID(ctx, ps[i].ID)
			if err != nil || got.Name != ps[i].Name {
				t.Fatalf("create %d acknowledged, then ByID = %+v, %v", i, got, err)
			}
			keys[evs[i].Event.Key] = i
		}
		if page := list(t, s, catalog.Filter{Category: "home", Subcategory: "kitchen", Limit: plaza.MaxLimit}); len(page.Items) != n {
			t.Fatalf("home/kitchen lists %d products, want %d", len(page.Items), n)
		}
		got := relayAll(t, db)
		if len(got) != n {
			t.Fatalf("relayed %d events, want %d", len(got), n)
		}
		for _, ev := range got {
			if _, ok := keys[ev.Key]; !ok {
				t.Fatalf("event %s %s was not one of the creates', or came twice", ev.Type, ev.Key)
			}
			delete(keys, ev.Key)
		}
	})
}

// holdWrites blocks group commits until the returned release is called: on SQLite a
// transaction holds the one writer connection; on PostgreSQL it holds the catalog stream's
// outbox lock, which every group with a catalog event takes.
func holdWrites(t *testing.T, db *store.DB) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		finished <- db.Tx(context.Background(), func(q store.Querier) error {
			if db.Dialect() == store.Postgres {
				if _, err := q.ExecContext(context.Background(), `SELECT pg_advisory_xact_lock($1, hashtext($2))`, store.OutboxLockClass, plaza.StreamCatalog); err != nil {
					return err
				}
			}
			close(held)
			<-done
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-finished:
		t.Fatalf("holding the writer: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(done)
			if err := <-finished; err != nil {
				t.Errorf("holding the writer: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitCommits waits until the committer has queued writes waiting and is (or is not)
// running a group.
func waitCommits(t *testing.T, db *store.DB, queued int, running bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, r := db.Commits()
		if q == queued && r == running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committer: %d queued, running %v; want %d, %v", q, r, queued, running)
		}
		time.Sleep(time.Millisecond)
	}
}

// queueGroup holds the writer, starts first (a group of its own, blocked), then each of
// rest in order, and releases the writer once they wait in the queue together: rest then
// commit as one group. It returns every write's error, first's last.
func queueGroup(t *testing.T, db *store.DB, first func() error, rest ...func() error) []error {
	t.Helper()
	release := holdWrites(t, db)
	errs := make([]error, len(rest)+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[len(rest)] = first() })
	waitCommits(t, db, 0, true)
	for i, fn := range rest {
		wg.Go(func() { errs[i] = fn() })
		waitCommits(t, db, i+1, true)
	}
	release()
	wg.Wait()
	return errs
}

// TestOneFailingWriteInAGroup: in one group, a create with a taken ID and an update of a
// stale version fail with their own errors and leave no event; the writes before and after
// them commit with theirs.
func TestOneFailingWriteInAGroup(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		taken := product("Taken", "home", "", 100, 1, time.Now())
		if err := s.Insert(ctx, taken); err != nil {
			t.Fatal(err)
		}
		first := product("First", "home", "", 100, 1, time.Now())
		before := product("Before", "home", "decor", 200, 1, time.Now())
		dup := product("Duplicate", "garden", "", 300, 1, time.Now())
		dup.ID = taken.ID
		after := product("After", "home", "decor/lamps", 400, 1, time.Now())
		stale := taken
		stale.Stock = 9
		create := func(p catalog.Product) func() error {
			return func() error { return s.Create(ctx, p, outgoing(t, catalog.EventCreated, p)) }
		}
		errs := queueGroup(t, db, create(first),
			create(before),
			create(dup),
			func() error {
				_, err := s.Update(ctx, stale, 7, outgoing(t, catalog.EventUpdated, stale))
				return err
			},
			create(after))
		if errs[0] != nil || errs[3] != nil || errs[4] != nil {
			t.Fatalf("writes around the failures: before %v, after %v, first %v", errs[0], errs[3], errs[4])
		}
		if plaza.ErrorCodeOf(errs[1]) != plaza.EConflict {
			t.Errorf("create with a taken ID: %v, want EConflict", errs[1])
		}
		if plaza.ErrorCodeOf(errs[2]) != plaza.EPreconditionFailed {
			t.Errorf("update of a stale version: %v, want EPreconditionFailed", errs[2])
		}
		for _, p := range []catalog.Product{first, before, after} {
			if got, err := s.ByID(ctx, p.ID); err != nil || got.Name != p.Name {
				t.Errorf("%s: ByID = %+v, %v", p.Name, got, err)
			}
		}
		if got, err := s.ByID(ctx, taken.ID); err != nil || got.Name != "Taken" || got.Stock != 1 {
			t.Errorf("the taken product changed: %+v, %v", got, err)
		}
		var names []string
		for _, ev := range relayAll(t, db) {
			var p catalog.Product
			if err := json.Unmarshal(ev.Data, &p); err != nil {
				t.Fatal(err)
			}
			names = append(names, ev.Type+" "+p.Name)
		}
		want := fmt.Sprint([]string{"product.created First", "product.created Before", "product.created After"})
		if fmt.Sprint(names) != want {
			t.Errorf("events %v, want %v", names, want)
		}
	})
}

// TestFailedCommitFailsTheWholeGroup: when a group's COMMIT fails (here a deferred foreign
// key that one write breaks), every write of it is answered with an error and none is
// stored, nor its event.
func TestFailedCommitFailsTheWholeGroup(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		if err := db.Tx(ctx, func(q store.Querier) error {
			_, err := q.ExecContext(ctx, `CREATE TABLE commit_check (id INTEGER PRIMARY KEY,
				ref INTEGER REFERENCES commit_check (id) DEFERRABLE INITIALLY DEFERRED)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		first := product("First", "home", "", 100, 1, time.Now())
		a := product("A", "home", "", 100, 1, time.Now())
		b := product("B", "home", "", 100, 1, time.Now())
		create := func(p catalog.Product) func() error {
			return func() error { return s.Create(ctx, p, outgoing(t, catalog.EventCreated, p)) }
		}
		orphan := func() error {
			ev := outgoing(t, catalog.EventCreated, a)
			return db.GroupWrite(ctx, []plaza.Outgoing{ev}, func(ctx context.Context, q store.Querier) error {
				// Accepted now, refused at COMMIT: row 2 does not exist.
				_, err := q.ExecContext(ctx, `INSERT INTO commit_check (id, ref) VALUES (1, 2)`)
				return err
			})
		}
		errs := queueGroup(t, db, create(first), create(a), orphan, create(b))
		if errs[3] != nil {
			t.Fatalf("the write before the group: %v", errs[3])
		}
		for i, err := range errs[:3] {
			if err == nil {
				t.Errorf("write %d of the group acknowledged; its COMMIT failed", i)
			} else if pe := (*plaza.Error)(nil); !errors.As(err, &pe) {
				t.Errorf("write %d: %v is not a *plaza.Error", i, err)
			}
		}
		for _, p := range []catalog.Product{a, b} {
			if _, err := s.ByID(ctx, p.ID); plaza.ErrorCodeOf(err) != plaza.ENotFound {
				t.Errorf("%s stored though its COMMIT failed: %v", p.Name, err)
			}
		}
		if n, err := db.OutboxLen(ctx); err != nil || n != 1 {
			t.Errorf("outbox holds %d events (%v), want 1 (the first write's)", n, err)
		}
		// The writer is usable again.
		c := product("C", "home", "", 100, 1, time.Now())
		if err := create(c)(); err != nil {
			t.Fatalf("a create after the failed group: %v", err)
		}
	})
}

// TestCallerLeavingDoesNotBreakTheGroup: a caller whose context ends while its write waits
// is answered at once and its write dropped; one whose write is already being committed
// learns the truth (committed); the others' writes commit.
func TestCallerLeavingDoesNotBreakTheGroup(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		release := holdWrites(t, db)
		firstCtx, leaveFirst := context.WithCancel(t.Context())
		leftCtx, leave := context.WithCancel(t.Context())
		first := product("First", "home", "", 100, 1, time.Now())
		left := product("Left", "home", "", 100, 1, time.Now())
		kept := product("Kept", "home", "", 100, 1, time.Now())
		var firstErr, keptErr error
		var wg sync.WaitGroup
		wg.Go(func() { firstErr = s.Create(firstCtx, first, outgoing(t, catalog.EventCreated, first)) })
		waitCommits(t, db, 0, true)
		leftErr := make(chan error, 1)
		go func() { leftErr <- s.Create(leftCtx, left, outgoing(t, catalog.EventCreated, left)) }()
		waitCommits(t, db, 1, true)
		wg.Go(func() { keptErr = s.Create(t.Context(), kept, outgoing(t, catalog.EventCreated, kept)) })
		waitCommits(t, db, 2, true)

		leave()
		leaveFirst()
		select {
		case err := <-leftErr:
			if plaza.ErrorCodeOf(err) != plaza.EUnavailable {
				t.Errorf("the caller that left: %v, want EUnavailable", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the caller that left is still waiting while the writer is held")
		}
		release()
		wg.Wait()
		if firstErr != nil || keptErr != nil {
			t.Fatalf("first (its caller left mid-commit) %v, kept %v; want both committed", firstErr, keptErr)
		}
		ctx := t.Context()
		for _, p := range []catalog.Product{first, kept} {
			if _, err := s.ByID(ctx, p.ID); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		}
		if _, err := s.ByID(ctx, left.ID); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Errorf("the write whose caller left was stored: %v", err)
		}
		if n, err := db.OutboxLen(ctx); err != nil || n != 2 {
			t.Errorf("outbox holds %d events (%v), want 2", n, err)
		}
	})
}

// TestRiderJoinsTheNextWrite: a rider (the relay's delete of what it published) does not
// start a transaction of its own while it may wait: it commits in the same transaction as
// the next ordinary write, and alone once it has waited long enough.
func TestRiderJoinsTheNextWrite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		db.SetRiderWait(time.Hour) // the test says when the write comes
		ctx := t.Context()
		var mu sync.Mutex
		var riderQ, writeQ store.Querier
		rode := make(chan error, 1)
		go func() {
			rode <- db.RiderWrite(ctx, func(_ context.Context, q store.Querier) error {
				mu.Lock()
				defer mu.Unlock()
				riderQ = q
				return nil
			})
		}()
		waitCommits(t, db, 1, false) // queued, and no transaction started for it
		if err := db.GroupWrite(ctx, nil, func(_ context.Context, q store.Querier) error {
			mu.Lock()
			defer mu.Unlock()
			writeQ = q
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-rode; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if riderQ == nil || riderQ != writeQ {
			t.Fatal("the rider and the write that came after it ran in different transactions")
		}
	})
}

// TestRiderCommitsAloneInTime: a rider with no write to join commits alone after its
// wait, and one still waiting when the store closes commits before Close returns.
func TestRiderCommitsAloneInTime(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		rider := func() error {
			return db.RiderWrite(ctx, func(ctx context.Context, q store.Querier) error {
				_, err := q.ExecContext(ctx, `DELETE FROM outbox WHERE seq < 0`)
				return err
			})
		}
		db.SetRiderWait(10 * time.Millisecond)
		if err := rider(); err != nil {
			t.Fatalf("a rider alone: %v", err)
		}
		db.SetRiderWait(time.Hour)
		rode := make(chan error, 1)
		go func() { rode <- rider() }()
		waitCommits(t, db, 1, false)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-rode; err != nil {
			t.Fatalf("a rider waiting at Close: %v", err)
		}
	})
}
