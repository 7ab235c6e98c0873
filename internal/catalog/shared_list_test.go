package catalog_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// gatedStore answers List only once its gate opens, counting the queries, so a test can
// see which list requests shared one.
type gatedStore struct {
	catalog.Store // nil: only List and Create are called
	gate          chan struct{}
	queries       atomic.Int32
	created       atomic.Int32
}

func (g *gatedStore) List(ctx context.Context, f catalog.Filter) (catalog.Page, error) {
	n, created := g.queries.Add(1), g.created.Load() // what the query sees: the products when it began
	select {
	case <-g.gate:
	case <-ctx.Done():
		return catalog.Page{}, ctx.Err()
	}
	// Each query's page names the query that made it and how many products existed.
	return catalog.Page{Items: []catalog.Product{{ID: f.Q, Version: int64(n), Stock: int64(created)}}}, nil
}

func (g *gatedStore) Create(context.Context, catalog.Product, ...plaza.Outgoing) error {
	g.created.Add(1)
	return nil
}

// TestIdenticalListsShareOneQuery: list requests that arrive while an identical one runs
// wait for its answer instead of querying again; a different list, or one asked for after a
// write was acknowledged, runs its own, so a writer always reads its write. A caller who
// gives up stops waiting without cancelling the others' query.
func TestIdenticalListsShareOneQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gatedStore{gate: make(chan struct{})}
		// Three search slots: the shared queries below hold two while their gate is closed.
		svc, err := catalog.New(catalog.Options{Store: st, SearchSlots: 3})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		type answer struct {
			page catalog.Page
			err  error
		}
		var wg sync.WaitGroup
		var opened sync.Once
		open := func() { opened.Do(func() { close(st.gate) }) }
		// A failing check must not leave the bubble's goroutines waiting on the gate.
		defer wg.Wait()
		defer open()
		ask := func(ctx context.Context, q string, into *answer) {
			wg.Go(func() {
				into.page, into.err = svc.List(ctx, catalog.Filter{Q: q})
			})
		}

		same := make([]answer, 8)
		for i := range same {
			ask(ctx, "days", &same[i])
		}
		var other answer
		ask(ctx, "toaster", &other)
		impatient, giveUp := context.WithCancel(ctx)
		var gaveUp answer
		ask(impatient, "days", &gaveUp)
		synctest.Wait()
		if n := st.queries.Load(); n != 2 {
			t.Fatalf("10 list requests of 2 kinds ran %d queries, want 2", n)
		}
		giveUp()
		synctest.Wait()

		// A product is created (and acknowledged) while the shared query still runs: the
		// same list asked for now must not be answered from before the write.
		in := catalog.Input{Name: "Lamp", Description: "A lamp.", PriceCents: new(int64(1000)), Currency: "EUR", Category: "home", Stock: 1}
		admin := plaza.WithPrincipal(ctx, plaza.Principal{UserID: "0000000000000000000000admin", Role: plaza.RoleAdmin})
		if _, err := svc.Create(admin, in); err != nil {
			t.Fatal(err)
		}
		var afterWrite answer
		ask(ctx, "days", &afterWrite)
		synctest.Wait()
		if n := st.queries.Load(); n != 3 {
			t.Fatalf("a list asked for after a write ran %d queries in all, want a third of its own", n)
		}

		open()
		wg.Wait()
		if gaveUp.err != context.Canceled {
			t.Errorf("the caller who gave up got %v, want context.Canceled", gaveUp.err)
		}
		for i, a := range same {
			if a.err != nil || len(a.page.Items) != 1 || a.page.Items[0].ID != "days" || a.page.Items[0].Stock != 0 {
				t.Fatalf("shared answer %d = %+v, %v", i, a.page.Items, a.err)
			}
		}
		if other.err != nil || other.page.Items[0].ID != "toaster" {
			t.Fatalf("the other list got %+v, %v", other.page.Items, other.err)
		}
		if afterWrite.err != nil || afterWrite.page.Items[0].Stock != 1 {
			t.Fatalf("the list asked for after the write got %+v, %v; want the query that saw it", afterWrite.page.Items, afterWrite.err)
		}
		// Callers get their own slices: one caller's changes do not reach another.
		same[0].page.Items[0].Name = "changed"
		if same[1].page.Items[0].Name == "changed" {
			t.Fatal("two callers share one slice of items")
		}
	})
}
