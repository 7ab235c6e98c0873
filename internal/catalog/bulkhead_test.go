package catalog_test

import (
	"context"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// slowSearchStore answers lists at once and searches only when released (a search the
// database cannot interrupt in time); other methods are not called.
type slowSearchStore struct {
	catalog.Store
	entered chan struct{} // a search reached the store
	release chan struct{}
}

func (s slowSearchStore) List(ctx context.Context, f catalog.Filter) (catalog.Page, error) {
	if f.Q == "" {
		return catalog.Page{Items: []catalog.Product{}}, nil
	}
	s.entered <- struct{}{}
	<-s.release
	if ctx.Err() != nil {
		return catalog.Page{}, ctx.Err()
	}
	return catalog.Page{Items: []catalog.Product{}}, nil
}

// TestSearchesTakeTurns: with every search slot held, another search waits at most the
// query timeout and is answered unavailable with a retry hint, while ordinary lists are
// served; a search that outruns the timeout is stopped and answered the same way.
func TestSearchesTakeTurns(t *testing.T) {
	t.Parallel()
	st := slowSearchStore{entered: make(chan struct{}, 10), release: make(chan struct{})}
	svc, err := catalog.New(catalog.Options{Store: st, SearchSlots: 1, QueryTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	held := make(chan error, 1)
	go func() {
		_, err := svc.List(ctx, catalog.Filter{Q: "laptop"})
		held <- err
	}()
	<-st.entered // the first search holds the only slot until released
	if _, err := svc.List(ctx, catalog.Filter{Category: "electronics"}); err != nil {
		t.Fatalf("an ordinary list while a search runs: %v", err)
	}
	_, waited := svc.List(ctx, catalog.Filter{Q: "phone"})
	if len(st.entered) != 0 {
		t.Fatal("a second search reached the store while the only slot was held")
	}
	if e := plaza.AsError(waited); e.Code != plaza.EUnavailable || e.RetryAfter <= 0 {
		t.Fatalf("search while the slot was held: %v; want unavailable with a retry hint", waited)
	}
	// Once searches finish, the slot is free again.
	close(st.release)
	if err := <-held; err != nil && plaza.ErrorCodeOf(err) != plaza.EUnavailable {
		t.Fatalf("the search that held the slot: %v", err)
	}
	go func() {
		for range st.entered {
		}
	}()
	if _, err := svc.List(ctx, catalog.Filter{Q: "phone"}); err != nil {
		t.Fatalf("search with a free slot: %v", err)
	}
}
