package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/etag"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

var (
	admin = plaza.Principal{UserID: "admin-1", Role: plaza.RoleAdmin}
	user  = plaza.Principal{UserID: "user-1", Role: plaza.RoleUser}
)

func as(ctx context.Context, p plaza.Principal) context.Context { return plaza.WithPrincipal(ctx, p) }

// instance is one Plaza's catalog: its own cache wrapper (with a local tier) over a backend
// and bus that several instances may share, as with Redis.
type instance struct {
	svc   *cached.Catalog
	cache *cache.Cache
}

func newInstance(t *testing.T, db *store.DB, backend cache.Backend, b bus.Bus) instance {
	t.Helper()
	c := cache.New(backend, cache.Options{Bus: b, LocalSize: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// The store's relay publishes the events writes store with their changes, as in
	// Plaza; instances sharing a database each run one, as Plaza instances do.
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		_ = db.RelayOutbox(ctx, b, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-relayed
	})
	svc, err := catalog.New(catalog.Options{Store: db.Products()})
	if err != nil {
		t.Fatal(err)
	}
	return instance{svc: cached.New(svc, c, nil), cache: c}
}

// newCore is the catalog service alone, for what transports do not call (seeding).
func newCore(t *testing.T, db *store.DB) *catalog.Service {
	t.Helper()
	svc, err := catalog.New(catalog.Options{Store: db.Products()})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// newService is the catalog as transports see it: the service behind the cache.
func newService(t *testing.T, db *store.DB) (*cached.Catalog, bus.Bus) {
	t.Helper()
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	return newInstance(t, db, cache.NewMemory(1000), b).svc, b
}

func price(n int64) *int64 { return &n }

func laptop() catalog.Input {
	return catalog.Input{Name: "Helix Gaming Laptop 17", Description: "Fast.", PriceCents: price(199999),
		Category: "electronics", Subcategory: "laptops/gaming", Stock: 4}
}

func code(err error) plaza.ErrorCode { return plaza.ErrorCodeOf(err) }

func TestWritesNeedAnAdmin(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		svc, _ := newService(t, db)
		ctx := t.Context()
		existing, err := svc.Create(as(ctx, admin), laptop())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			who  context.Context
			want plaza.ErrorCode
		}{
			{ctx, plaza.EUnauthenticated},
			{as(ctx, user), plaza.EForbidden},
		} {
			if _, err := svc.Create(tc.who, laptop()); code(err) != tc.want {
				t.Errorf("Create: %v; want %s", err, tc.want)
			}
			if _, err := svc.Replace(tc.who, existing.ID, laptop(), plaza.Expect{}); code(err) != tc.want {
				t.Errorf("Replace: %v; want %s", err, tc.want)
			}
			if _, err := svc.Patch(tc.who, existing.ID, plaza.Expect{}, func(in catalog.Input) (catalog.Input, error) { return in, nil }); code(err) != tc.want {
				t.Errorf("Patch: %v; want %s", err, tc.want)
			}
			if _, err := svc.Delete(tc.who, existing.ID, plaza.Expect{}); code(err) != tc.want {
				t.Errorf("Delete: %v; want %s", err, tc.want)
			}
		}
		// Reads are for everyone.
		if _, err := svc.ProductJSON(ctx, existing.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.Products().Count(ctx); n != 1 {
			t.Fatalf("%d products after refused writes", n)
		}
	})
}

func TestValidation(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc, _ := newService(t, db)
	ctx := as(t.Context(), admin)
	for _, tc := range []struct {
		name   string
		change func(*catalog.Input)
		fields []string
	}{
		{"empty name", func(in *catalog.Input) { in.Name = "  " }, []string{"name"}},
		{"long name", func(in *catalog.Input) { in.Name = strings.Repeat("é", 201) }, []string{"name"}},
		{"long description", func(in *catalog.Input) { in.Description = strings.Repeat("x", 5001) }, []string{"description"}},
		{"negative price and stock", func(in *catalog.Input) { in.PriceCents = price(-1); in.Stock = -1 }, []string{"price_cents", "stock"}},
		{"missing price", func(in *catalog.Input) { in.PriceCents = nil }, []string{"price_cents"}},
		{"bad slug", func(in *catalog.Input) { in.Category = "Electronics!" }, []string{"category"}},
		{"missing category", func(in *catalog.Input) { in.Category = "" }, []string{"category"}},
		{"bad subcategory", func(in *catalog.Input) { in.Subcategory = "laptops//gaming" }, []string{"subcategory"}},
		{"trailing slash", func(in *catalog.Input) { in.Subcategory = "laptops/" }, []string{"subcategory"}},
		{"too deep", func(in *catalog.Input) { in.Subcategory = "a/b/c/d/e/f" }, []string{"subcategory"}},
		{"lowercase currency", func(in *catalog.Input) { in.Currency = "usd" }, []string{"currency"}},
		{"unknown currency", func(in *catalog.Input) { in.Currency = "XYZ" }, []string{"currency"}},
	} {
		in := laptop()
		tc.change(&in)
		_, err := svc.Create(ctx, in)
		var pe *plaza.Error
		if !errors.As(err, &pe) || pe.Code != plaza.EInvalid {
			t.Errorf("%s: %v; want invalid", tc.name, err)
			continue
		}
		var got []string
		for _, f := range pe.Fields {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("%s: fields %v; want %v", tc.name, pe.Fields, tc.fields)
		}
	}
	in := laptop()
	in.Subcategory = "a/b/c/d/e"
	in.Currency = ""
	p, err := svc.Create(ctx, in)
	if err != nil || p.Currency != "USD" || p.Version != 1 {
		t.Fatalf("depth 5, default currency: %+v, %v", p, err)
	}
	in.Currency = "JPY"
	if _, err := svc.Create(ctx, in); err != nil {
		t.Fatalf("JPY: %v", err)
	}
}

func TestPreconditions(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		svc, _ := newService(t, db)
		ctx := as(t.Context(), admin)
		p, err := svc.Create(ctx, laptop())
		if err != nil {
			t.Fatal(err)
		}
		v1 := etag.Make(p.ID, p.Version)
		in := laptop()
		in.Stock = 9
		p2, err := svc.Replace(ctx, p.ID, in, etag.Expect(p.ID, `"other"`, v1))
		if err != nil || p2.Version != 2 || p2.Stock != 9 || etag.Make(p2.ID, p2.Version) == v1 {
			t.Fatalf("Replace with the current ETag: %+v, %v", p2, err)
		}
		if _, err := svc.Replace(ctx, p.ID, in, etag.Expect(p.ID, v1)); code(err) != plaza.EPreconditionFailed {
			t.Fatalf("Replace with a stale ETag: %v", err)
		}
		if _, err := svc.Replace(ctx, p.ID, in, etag.Expect(p.ID, "W/"+etag.Make(p2.ID, p2.Version))); code(err) != plaza.EPreconditionFailed {
			t.Fatalf("If-Match with a weak tag: %v; want precondition_failed (strong comparison)", err)
		}
		if _, err := svc.Delete(ctx, p.ID, etag.Expect(p.ID, v1)); code(err) != plaza.EPreconditionFailed {
			t.Fatalf("Delete with a stale ETag: %v", err)
		}
		if _, err := svc.Replace(ctx, p.ID, in, etag.Expect(p.ID, "*")); err != nil {
			t.Fatalf("If-Match *: %v", err)
		}
		if _, err := svc.Replace(ctx, "no-such-id", in, etag.Expect("no-such-id", "*")); code(err) != plaza.ENotFound {
			t.Fatalf("Replace of a missing product: %v", err)
		}

		// A write that races another between read and write: without If-Match it is
		// applied on top of the other (nothing lost); with If-Match it fails.
		race := func(expect plaza.Expect) (catalog.Product, error) {
			raced := false
			return svc.Patch(ctx, p.ID, expect, func(in catalog.Input) (catalog.Input, error) {
				if !raced {
					raced = true
					other := in
					other.Name = "Renamed meanwhile"
					if _, err := svc.Replace(ctx, p.ID, other, plaza.Expect{}); err != nil {
						t.Fatal(err)
					}
				}
				in.Stock++
				return in, nil
			})
		}
		got, err := race(plaza.Expect{})
		if err != nil || got.Name != "Renamed meanwhile" || got.Stock != 10 {
			t.Fatalf("racing patch without If-Match: %+v, %v; want the rename kept and stock 10", got, err)
		}
		if _, err := race(etag.Expect(p.ID, etag.Make(got.ID, got.Version))); code(err) != plaza.EPreconditionFailed {
			t.Fatalf("racing patch with If-Match: %v; want precondition_failed", err)
		}
		// One that loses every race gives up with a conflict (it sent no precondition).
		_, err = svc.Patch(ctx, p.ID, plaza.Expect{}, func(in catalog.Input) (catalog.Input, error) {
			if _, err := svc.Replace(ctx, p.ID, in, plaza.Expect{}); err != nil {
				t.Fatal(err)
			}
			return in, nil
		})
		if code(err) != plaza.EConflict {
			t.Fatalf("patch losing every race: %v; want conflict", err)
		}
	})
}

func TestEventsCarryTheProduct(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		svc, b := newService(t, db)
		ctx := as(t.Context(), admin)
		sub, err := b.Subscribe(ctx, plaza.StreamCatalog, "")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		p, err := svc.Create(ctx, laptop())
		if err != nil {
			t.Fatal(err)
		}
		up, err := svc.Patch(ctx, p.ID, plaza.Expect{}, func(in catalog.Input) (catalog.Input, error) { in.Stock = 0; return in, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Delete(ctx, p.ID, plaza.Expect{}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			typ     string
			version int64
		}{{catalog.EventCreated, 1}, {catalog.EventUpdated, 2}, {catalog.EventDeleted, 2}} {
			select {
			case ev := <-sub.Events():
				var got catalog.Product
				if err := json.Unmarshal(ev.Data, &got); err != nil {
					t.Fatal(err)
				}
				if ev.Type != want.typ || ev.ActorID != admin.UserID || got.ID != p.ID || got.Version != want.version || got.Name != up.Name {
					t.Fatalf("event %s %+v; want %s of version %d", ev.Type, got, want.typ, want.version)
				}
				if stored, _ := json.Marshal(up); ev.Type == catalog.EventUpdated && string(ev.Data) != string(stored) {
					t.Fatalf("product.updated carries %s; the store returned %s", ev.Data, stored)
				}
				if ev.Key == "" {
					t.Fatalf("event %s has no key to dedupe by", ev.Type)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s event", want.typ)
			}
		}
	})
}

// TestCacheAcrossInstances: two instances share a cache backend and a bus (as with
// Redis); each keeps a local tier. A write on one makes the other's next read a miss with
// the new version, and a delete makes it a not-found.
func TestCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		b := bus.NewMemory(bus.MemoryOptions{})
		t.Cleanup(func() { b.Close() })
		backend := cache.NewMemory(1000)
		a, other := newInstance(t, db, backend, b), newInstance(t, db, backend, b)

		p, err := a.svc.Create(as(ctx, admin), laptop())
		if err != nil {
			t.Fatal(err)
		}
		first, err := a.svc.ProductJSON(ctx, p.ID)
		if err != nil || first.Hit || first.ETag != etag.Make(p.ID, p.Version) {
			t.Fatalf("first read: %+v, %v; want a miss with %s", first, err, etag.Make(p.ID, p.Version))
		}
		for _, in := range []instance{a, other} {
			if got, err := in.svc.ProductJSON(ctx, p.ID); err != nil || !got.Hit || string(got.JSON) != string(first.JSON) {
				t.Fatalf("second read: hit=%v, %v", got.Hit, err)
			}
		}
		var decoded catalog.Product
		if err := json.Unmarshal(first.JSON, &decoded); err != nil || decoded != p {
			t.Fatalf("cached JSON %s decodes to %+v, %v", first.JSON, decoded, err)
		}

		updated, err := a.svc.Patch(as(ctx, admin), p.ID, plaza.Expect{}, func(in catalog.Input) (catalog.Input, error) {
			in.PriceCents = price(99)
			return in, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			got, err := other.svc.ProductJSON(ctx, p.ID)
			return err == nil && got.ETag == etag.Make(updated.ID, updated.Version)
		})
		got, err := other.svc.ProductJSON(ctx, p.ID)
		if err != nil || !got.Hit || got.ETag != etag.Make(updated.ID, updated.Version) {
			t.Fatalf("after update: %+v, %v", got, err)
		}

		if _, err := a.svc.Delete(as(ctx, admin), p.ID, plaza.Expect{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			_, err := other.svc.ProductJSON(ctx, p.ID)
			return code(err) == plaza.ENotFound
		})
	})
}

// TestSkipProductCache: with the product cache off (PLAZA_PRODUCT_CACHE=off) every read is
// answered by the store, a change made behind the cache's back shows at once, and nothing
// is left in the cache for other instances to read.
func TestSkipProductCache(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := t.Context()
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	backend := cache.NewMemory(1000)
	off, on := newInstance(t, db, backend, b), newInstance(t, db, backend, b)
	off.svc.SkipProductCache()

	p, err := off.svc.Create(as(ctx, admin), laptop())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := off.svc.ProductJSON(ctx, p.ID)
		if err != nil || got.Hit || got.ETag != etag.Make(p.ID, p.Version) {
			t.Fatalf("read: %+v, %v; want a miss with %s", got, err, etag.Make(p.ID, p.Version))
		}
	}
	cached, err := on.svc.ProductJSON(ctx, p.ID)
	if err != nil || cached.Hit {
		t.Fatalf("the cached instance found an entry the uncached one left: hit=%v, %v", cached.Hit, err)
	}
	// Both answer the same bytes: the body of a cache entry and of a read through.
	uncached, err := off.svc.ProductJSON(ctx, p.ID)
	if err != nil || !bytes.Equal(uncached.JSON, cached.JSON) || uncached.ETag != cached.ETag {
		t.Fatalf("read through: %q %s, %v; the cache's: %q %s", uncached.JSON, uncached.ETag, err, cached.JSON, cached.ETag)
	}
	if cached, err = on.svc.ProductJSON(ctx, p.ID); err != nil || !cached.Hit || !bytes.Equal(uncached.JSON, cached.JSON) {
		t.Fatalf("cache hit: %q, hit=%v, %v; read through: %q", cached.JSON, cached.Hit, err, uncached.JSON)
	}

	// A change straight in the store, which no cache hears of.
	p.Name = "Renamed behind the cache"
	if p, err = db.Products().Update(ctx, p, p.Version); err != nil {
		t.Fatal(err)
	}
	got, err := off.svc.Product(ctx, p.ID)
	if err != nil || got.Name != p.Name {
		t.Fatalf("Product = %q, %v; want %q", got.Name, err, p.Name)
	}
	enc, err := off.svc.ProductJSON(ctx, p.ID)
	if err != nil || enc.Hit || enc.ETag != etag.Make(p.ID, p.Version) {
		t.Fatalf("ProductJSON after the change: %+v, %v", enc, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCategoriesTree(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		svc, _ := newService(t, db)
		ctx := as(t.Context(), admin)
		enc, err := svc.CategoriesJSON(ctx)
		if err != nil || strings.TrimSpace(string(enc.JSON)) != "[]" {
			t.Fatalf("empty tree: %s, %v", enc.JSON, err)
		}
		for _, path := range [][2]string{
			{"electronics", "laptops/gaming"}, {"electronics", "laptops/gaming"}, {"electronics", "laptops"},
			{"electronics", "phones"}, {"electronics", ""}, {"home", "kitchen"},
		} {
			in := laptop()
			in.Category, in.Subcategory = path[0], path[1]
			if _, err := svc.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		enc, err = svc.CategoriesJSON(ctx)
		if err != nil || enc.Hit {
			t.Fatalf("tree after writes: hit=%v, %v; want a fresh load", enc.Hit, err)
		}
		const want = `[{"slug":"electronics","path":"electronics","count":5,"children":[` +
			`{"slug":"laptops","path":"electronics/laptops","count":3,"children":[` +
			`{"slug":"gaming","path":"electronics/laptops/gaming","count":2,"children":[]}]},` +
			`{"slug":"phones","path":"electronics/phones","count":1,"children":[]}]},` +
			`{"slug":"home","path":"home","count":1,"children":[` +
			`{"slug":"kitchen","path":"home/kitchen","count":1,"children":[]}]}]`
		if got := strings.TrimSpace(string(enc.JSON)); got != want {
			t.Fatalf("tree\n got %s\nwant %s", got, want)
		}
		if enc, _ := svc.CategoriesJSON(ctx); !enc.Hit {
			t.Fatal("second read of the tree missed the cache")
		}
	})
}

func TestListRejectsBadParameters(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc, _ := newService(t, db)
	neg := int64(-1)
	lo, hi := int64(500), int64(100)
	for field, f := range map[string]catalog.Filter{
		"sort":        {Sort: "popularity"},
		"limit":       {Limit: 101},
		"category":    {Category: "Not A Slug"},
		"subcategory": {Subcategory: "a/b/c/d/e/f"},
		"min_price":   {MinPrice: &lo, MaxPrice: &hi},
		"max_price":   {MaxPrice: &neg},
		"cursor":      {Cursor: "%%%"},
	} {
		_, err := svc.List(t.Context(), f)
		var pe *plaza.Error
		if !errors.As(err, &pe) || pe.Code != plaza.EBadRequest || len(pe.Fields) != 1 || pe.Fields[0].Field != field {
			t.Errorf("%s: %v; want bad_request naming it", field, err)
		}
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		svc := newCore(t, db)
		ctx := t.Context()
		var calls []int
		if err := svc.Seed(ctx, 2500, func(done int) { calls = append(calls, done) }); err != nil {
			t.Fatal(err)
		}
		if n, err := svc.Count(ctx); err != nil || n != 2500 {
			t.Fatalf("Count after seeding 2500 = %d, %v", n, err)
		}
		if !slices.Equal(calls, []int{1000, 2000, 2500}) {
			t.Fatalf("progress calls %v", calls)
		}
	})
}

func TestSeedDemoOnce(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc := newCore(t, db)
	ctx := t.Context()
	ok, err := svc.SeedDemo(ctx)
	if err != nil || !ok {
		t.Fatalf("SeedDemo on an empty database: %v, %v", ok, err)
	}
	if ok, err := svc.SeedDemo(ctx); ok || err != nil {
		t.Fatalf("second SeedDemo: %v, %v", ok, err)
	}
	if n, _ := svc.Count(ctx); n < 200 {
		t.Fatalf("demo catalog has %d products; want at least 200", n)
	}
	tree, err := svc.Categories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	var walk func([]*catalog.Category, int)
	walk = func(cs []*catalog.Category, d int) {
		for _, c := range cs {
			depth = max(depth, d)
			walk(c.Children, d+1)
		}
	}
	walk(tree, 0)
	if len(tree) < 5 || depth < 3 {
		t.Fatalf("demo tree has %d categories, depth %d; want several, nested three deep", len(tree), depth)
	}
	page, err := svc.List(ctx, catalog.Filter{Sort: catalog.SortPrice, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	prices := map[int64]bool{}
	for _, p := range page.Items {
		prices[p.PriceCents] = true
	}
	if len(prices) < 50 {
		t.Fatalf("demo prices barely vary: %d distinct among 100", len(prices))
	}
	no := false
	soldOut, err := svc.List(ctx, catalog.Filter{InStock: &no, Limit: 100})
	if err != nil || len(soldOut.Items) == 0 || len(soldOut.Items) > 100 || soldOut.NextCursor != "" {
		t.Fatalf("demo stock does not vary: %d sold out, %v", len(soldOut.Items), err)
	}
}
