package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func product(name, category, sub string, price, stock int64, created time.Time) catalog.Product {
	return catalog.Product{
		ID: plaza.NewID(), Name: name, Description: "about " + name, PriceCents: price, Currency: "USD",
		Category: category, Subcategory: sub, Stock: stock, Version: 1, CreatedAt: created, UpdatedAt: created,
	}
}

func mustInsert(t *testing.T, s store.Products, ps ...catalog.Product) {
	t.Helper()
	if err := s.Insert(t.Context(), ps...); err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, s store.Products, f catalog.Filter) catalog.Page {
	t.Helper()
	f, err := f.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.List(t.Context(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return page
}

func names(ps []catalog.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func TestProductsCRUD(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		p := product("Helix Gaming Laptop 17", "electronics", "laptops/gaming", 199999, 3, t0.Add(123456789*time.Nanosecond))
		mustInsert(t, s, p)
		if err := s.Insert(ctx, p); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("duplicate ID: %v; want conflict", err)
		}

		got, err := s.ByID(ctx, p.ID)
		p.CreatedAt = p.CreatedAt.Truncate(time.Microsecond)
		p.UpdatedAt = p.CreatedAt
		if err != nil || got != p {
			t.Fatalf("ByID = %+v, %v; want %+v", got, err, p)
		}
		if _, err := s.ByID(ctx, "nope"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("ByID(unknown): %v", err)
		}

		next := p
		next.Name, next.PriceCents, next.Subcategory, next.UpdatedAt = "Helix Gaming Laptop 18", 209999, "laptops", t0.Add(time.Hour)
		updated, err := s.Update(ctx, next, 1)
		if err != nil {
			t.Fatal(err)
		}
		next.Version = 2
		if updated != next {
			t.Fatalf("Update returned %+v; want %+v", updated, next)
		}
		if _, err := s.Update(ctx, next, 1); plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
			t.Fatalf("Update with a stale version: %v; want precondition_failed", err)
		}
		gone := next
		gone.ID = "missing"
		if _, err := s.Update(ctx, gone, 1); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("Update of a missing product: %v; want not_found", err)
		}
		if err := s.Delete(ctx, p.ID, 1); plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
			t.Fatalf("Delete with a stale version: %v", err)
		}
		if n, err := s.Count(ctx); err != nil || n != 1 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		if err := s.Delete(ctx, p.ID, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, p.ID, 2); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("second Delete: %v", err)
		}
		if n, err := s.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count after delete = %d, %v", n, err)
		}
	})
}

// A read by ID whose context has ended fails without an answer on every backend, also
// where the store does not watch the context while the query runs (SQLite's point reads).
func TestProductsByIDEndedContext(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		p := product("Helix Gaming Laptop 17", "electronics", "laptops/gaming", 199999, 3, t0)
		mustInsert(t, s, p)
		ctx, cancel := context.WithCancel(t.Context())
		if got, err := s.ByID(ctx, p.ID); err != nil || got.ID != p.ID {
			t.Fatalf("ByID = %+v, %v", got, err)
		}
		cancel()
		got, err := s.ByID(ctx, p.ID)
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("ByID with a canceled context = %+v, %v; want context.Canceled", got, err)
		}
	})
}

// ByIDJSON's document is byte for byte what encoding/json writes for the product ByID
// returns, whatever its text holds: SQLite builds it in the query, and its escaping and
// time format must not show.
func TestProductsByIDJSON(t *testing.T) {
	t.Parallel()
	var controls strings.Builder
	for c := range rune(0x20) {
		controls.WriteRune(c)
	}
	controls.WriteString("\x7f")
	texts := []string{
		"plain", "", `"quoted" back\slash /slash`, "<script>alert('x')</script> & &amp;",
		"line\u2028para\u2029 dash \u2013 é e\u0301 日本 🛒 \ufffd", "tab\tnew\nline\rcr\bbs\fff",
		strings.Repeat("long ", 400),
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		cases := slices.Clone(texts)
		if db.Dialect() == store.SQLite {
			// PostgreSQL's text holds neither NUL nor invalid UTF-8.
			cases = append(cases, controls.String(), "bad \xff\xfe utf-8", "nul\x00in")
		} else {
			cases = append(cases, controls.String()[1:])
		}
		var ps []catalog.Product
		for i, text := range cases {
			p := product(text, "c"+text, "s/"+text, int64(i)*(1<<40)+1, int64(i), t0.Add(time.Duration(i)*1234567*time.Nanosecond))
			p.Description, p.Currency = text+text, text
			p.UpdatedAt = p.CreatedAt.Add(time.Duration(i) * 100 * time.Millisecond)
			ps = append(ps, p)
		}
		mustInsert(t, s, ps...)
		for i, p := range ps {
			want, err := s.ByID(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, version, err := s.ByIDJSON(ctx, p.ID)
			if err != nil || string(got) != string(wantJSON)+"\n" || version != want.Version {
				t.Errorf("case %d %q: ByIDJSON =\n%s version %d, %v\nwant\n%s\nversion %d", i, cases[i], got, version, err, wantJSON, want.Version)
			}
		}
		if _, _, err := s.ByIDJSON(ctx, plaza.NewID()); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("ByIDJSON(unknown): %v; want not_found", err)
		}
		ended, cancel := context.WithCancel(ctx)
		cancel()
		if got, _, err := s.ByIDJSON(ended, ps[0].ID); !errors.Is(err, context.Canceled) {
			t.Fatalf("ByIDJSON with a canceled context = %s, %v; want context.Canceled", got, err)
		}
	})
}

// A row holding values the store would not have written (another type, a time in another
// format, as a hand-made UPDATE or another program may leave) is read by ByIDJSON as ByID
// reads it: the same bytes when ByID can read it, an error when it cannot.
func TestProductsByIDJSONOfRowsWrittenElsewhere(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := t.Context()
	s := db.Products()
	for _, set := range []string{
		`name = CAST('Desk Lamp' AS BLOB)`,
		`price_cents = 1999.0, stock = '7'`,
		`created_at = '2025-01-01T00:00:00Z'`,
		`created_at = '2025-01-01T02:00:00.5+02:00', updated_at = '2025-01-01T02:00:00.000000000+02:00'`,
		`updated_at = '2025-01-01 00:00:00.000000000Z'`,
		`updated_at = '10000-01-01T00:00:00.000000000Z'`,
		`created_at = 'yesterday'`,
		`price_cents = 19.99`,
	} {
		p := product("Desk Lamp", "home", "lighting", 1999, 7, t0)
		mustInsert(t, s, p)
		if err := db.Tx(ctx, func(q store.Querier) error {
			_, err := q.ExecContext(ctx, `UPDATE products SET `+set+` WHERE id = $1`, p.ID)
			return err
		}); err != nil {
			t.Fatalf("%s: %v", set, err)
		}
		got, version, err := s.ByIDJSON(ctx, p.ID)
		want, wantErr := s.ByID(ctx, p.ID)
		if wantErr != nil {
			if err == nil {
				t.Errorf("%s: ByID failed (%v), ByIDJSON answered %s", set, wantErr, got)
			}
			continue
		}
		wantJSON, _ := json.Marshal(want)
		if err != nil || string(got) != string(wantJSON)+"\n" || version != want.Version {
			t.Errorf("%s: ByIDJSON =\n%s version %d, %v\nwant\n%s\nversion %d", set, got, version, err, wantJSON, want.Version)
		}
	}
}

func TestProductsFilters(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		mustInsert(t, s,
			product("A laptop", "electronics", "laptops", 100, 1, t0.Add(1*time.Minute)),
			product("B gaming", "electronics", "laptops/gaming", 200, 0, t0.Add(2*time.Minute)),
			product("C deep", "electronics", "laptops/gaming/rgb/tkl", 300, 5, t0.Add(3*time.Minute)),
			product("D lookalike", "electronics", "laptopsx", 400, 5, t0.Add(4*time.Minute)),
			product("E lookalike", "electronics", "laptops-x/gaming", 500, 5, t0.Add(5*time.Minute)),
			product("F phone", "electronics", "phones", 600, 5, t0.Add(6*time.Minute)),
			product("G top", "electronics", "", 700, 5, t0.Add(7*time.Minute)),
			product("H pan", "home", "kitchen", 800, 5, t0.Add(8*time.Minute)),
			product("I other laptops", "office", "laptops", 900, 5, t0.Add(9*time.Minute)),
		)
		i64 := func(n int64) *int64 { return &n }
		yes, no := true, false
		for _, tc := range []struct {
			name string
			f    catalog.Filter
			want []string
		}{
			{"everything newest first", catalog.Filter{}, []string{"I other laptops", "H pan", "G top", "F phone", "E lookalike", "D lookalike", "C deep", "B gaming", "A laptop"}},
			{"category", catalog.Filter{Category: "home"}, []string{"H pan"}},
			{"subcategory prefix by segment", catalog.Filter{Category: "electronics", Subcategory: "laptops", Sort: catalog.SortOldest},
				[]string{"A laptop", "B gaming", "C deep"}},
			{"deeper prefix", catalog.Filter{Category: "electronics", Subcategory: "laptops/gaming", Sort: catalog.SortOldest},
				[]string{"B gaming", "C deep"}},
			{"subcategory across categories", catalog.Filter{Subcategory: "laptops", Sort: catalog.SortOldest},
				[]string{"A laptop", "B gaming", "C deep", "I other laptops"}},
			{"price range", catalog.Filter{MinPrice: i64(200), MaxPrice: i64(400), Sort: catalog.SortPrice}, []string{"B gaming", "C deep", "D lookalike"}},
			{"in stock", catalog.Filter{Category: "electronics", Subcategory: "laptops", InStock: &yes, Sort: catalog.SortOldest}, []string{"A laptop", "C deep"}},
			{"sold out", catalog.Filter{InStock: &no}, []string{"B gaming"}},
			{"price descending", catalog.Filter{Category: "electronics", Sort: catalog.SortPriceDesc, Limit: 3}, []string{"G top", "F phone", "E lookalike"}},
			{"name", catalog.Filter{Category: "electronics", Sort: catalog.SortName, Limit: 2}, []string{"A laptop", "B gaming"}},
		} {
			if got := names(list(t, s, tc.f).Items); !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %q; want %q", tc.name, got, tc.want)
			}
		}
	})
}

// TestProductsRangeFilters: broad and narrow price ranges and subcategory prefixes under
// another sort take different plans on SQLite (see sqliteHints); all give the same answers,
// over the products table and over product_paths.
func TestProductsRangeFilters(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		ps := make([]catalog.Product, 3000)
		for i := range ps {
			sub := "bricks/big" // 2250 of them: a broad prefix
			if i%4 == 0 {
				sub = "bricks-x" // a sibling the prefix must leave out
			}
			ps[i] = product(fmt.Sprint(i), "toys", sub, int64(i), 1, t0.Add(time.Duration(i)*time.Second))
		}
		mustInsert(t, s, ps...)
		i64 := func(n int64) *int64 { return &n }
		for _, category := range []string{"", "toys"} {
			for _, tc := range []struct {
				min, max int64
				want     []string
			}{
				{100, 2900, []string{"2900", "2899", "2898"}}, // 2801 matches
				{100, 1000, []string{"1000", "999", "998"}},   // 901 matches
				{1500, 1500, []string{"1500"}},
			} {
				page := list(t, s, catalog.Filter{Category: category, MinPrice: i64(tc.min), MaxPrice: i64(tc.max), Limit: 3})
				if got := names(page.Items); !slices.Equal(got, tc.want) {
					t.Errorf("category %q, price %d..%d newest first: %q; want %q", category, tc.min, tc.max, got, tc.want)
				}
			}
		}
		for _, f := range []catalog.Filter{{Subcategory: "bricks"}, {Category: "toys", Subcategory: "bricks"}} {
			f.Limit = 3
			if got := names(list(t, s, f).Items); !slices.Equal(got, []string{"2999", "2998", "2997"}) {
				t.Errorf("%+v: %q", f, got)
			}
		}
		if got := names(list(t, s, catalog.Filter{Subcategory: "bricks-x", Limit: 2}).Items); !slices.Equal(got, []string{"2996", "2992"}) {
			t.Errorf("narrow subcategory: %q", got)
		}
	})
}

// TestProductsPathsFollowWrites: category pages (product_paths) follow moves, price and
// name changes, and deletes.
func TestProductsPathsFollowWrites(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		a := product("A", "electronics", "audio/headphones", 100, 1, t0)
		b := product("B", "electronics", "audio/speakers", 200, 1, t0.Add(time.Second))
		c := product("C", "electronics", "laptops", 300, 1, t0.Add(2*time.Second))
		mustInsert(t, s, a, b, c)
		byPrice := func(category, sub string) []string {
			return names(list(t, s, catalog.Filter{Category: category, Subcategory: sub, Sort: catalog.SortPriceDesc}).Items)
		}
		if got := byPrice("electronics", "audio"); !slices.Equal(got, []string{"B", "A"}) {
			t.Fatalf("electronics/audio by price: %q", got)
		}
		moved := a
		moved.Name, moved.PriceCents, moved.Category, moved.Subcategory = "A2", 999, "home", "audio"
		if _, err := s.Update(ctx, moved, 1); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			category, sub string
			want          []string
		}{
			{"electronics", "audio", []string{"B"}},
			{"electronics", "", []string{"C", "B"}},
			{"home", "audio", []string{"A2"}},
			{"home", "", []string{"A2"}},
		} {
			if got := byPrice(tc.category, tc.sub); !slices.Equal(got, tc.want) {
				t.Errorf("%s/%s after the move: %q; want %q", tc.category, tc.sub, got, tc.want)
			}
		}
		if got := names(list(t, s, catalog.Filter{Category: "home", Sort: catalog.SortName, MinPrice: ptr(int64(999))}).Items); !slices.Equal(got, []string{"A2"}) {
			t.Errorf("home by name from 999: %q", got)
		}
		if err := s.Delete(ctx, b.ID, 1); err != nil {
			t.Fatal(err)
		}
		if got := byPrice("electronics", ""); !slices.Equal(got, []string{"C"}) {
			t.Errorf("electronics after deleting B: %q", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestProductsPagingUnderInserts walks 1,000 products page by page in every sort while
// other products are inserted between pages, before and after the cursor: every product
// present from the start is seen exactly once.
func TestProductsPagingUnderInserts(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		rng := rand.New(rand.NewPCG(1, 2))
		random := func(i int) catalog.Product {
			// Few distinct prices, names and times: ties that only the ID breaks.
			return product(fmt.Sprintf("Product %03d", rng.IntN(50)), "electronics", "", int64(rng.IntN(20))*100, 1,
				t0.Add(time.Duration(rng.IntN(100))*time.Second))
		}
		initial := make([]catalog.Product, 1000)
		for i := range initial {
			initial[i] = random(i)
		}
		mustInsert(t, s, initial...)

		type walk struct {
			sort     catalog.Sort
			category string // set: the page walks product_paths
		}
		var walks []walk
		for _, sort := range []catalog.Sort{catalog.SortNewest, catalog.SortOldest, catalog.SortPrice, catalog.SortPriceDesc, catalog.SortName} {
			walks = append(walks, walk{sort, ""}, walk{sort, "electronics"})
		}
		for _, w := range walks {
			sort := w.sort
			seen := map[string]int{}
			f := catalog.Filter{Sort: sort, Category: w.category, Limit: 37}
			pages := 0
			for {
				page := list(t, s, f)
				pages++
				for _, p := range page.Items {
					seen[p.ID]++
				}
				if page.NextCursor == "" {
					break
				}
				f.Cursor = page.NextCursor
				extra := make([]catalog.Product, 5)
				for i := range extra {
					extra[i] = random(i)
				}
				mustInsert(t, s, extra...)
			}
			for _, p := range initial {
				if seen[p.ID] != 1 {
					t.Fatalf("sort %s: product %s seen %d times", sort, p.ID, seen[p.ID])
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("sort %s: product %s seen %d times", sort, id, n)
				}
			}
			if pages < 1000/37 {
				t.Fatalf("sort %s: %d pages", sort, pages)
			}
		}
	})
}

func TestProductsSearch(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		obvious := product("Espresso Machine Deluxe", "home", "kitchen/appliances", 49999, 3, t0)
		obvious.Description = "A dual-boiler espresso machine for espresso at home."
		mentions := product("Coffee Grinder", "home", "kitchen/appliances", 9999, 3, t0.Add(time.Minute))
		mentions.Description = "Grinds beans fine enough for an espresso machine, or coarse for a french press."
		other := product("Kettle", "home", "kitchen/appliances", 2999, 3, t0.Add(2*time.Minute))
		other.Description = "Boils water; not an espresso maker."
		mustInsert(t, s, other, mentions, obvious)

		got := list(t, s, catalog.Filter{Q: "espresso machine"}).Items
		if len(got) != 2 || got[0].ID != obvious.ID || got[1].ID != mentions.ID {
			t.Fatalf("search ranked %q; want the espresso machine first, then the grinder", names(got))
		}
		// Stemming: "machines" finds "machine" on both backends.
		if got := list(t, s, catalog.Filter{Q: "machines"}).Items; len(got) != 2 {
			t.Fatalf("stemmed search found %q", names(got))
		}
		// Relevance pages page too.
		page := list(t, s, catalog.Filter{Q: "espresso", Limit: 1})
		rest := list(t, s, catalog.Filter{Q: "espresso", Limit: 5, Cursor: page.NextCursor})
		if len(page.Items) != 1 || page.Items[0].ID != obvious.ID || len(rest.Items) != 2 || rest.NextCursor != "" {
			t.Fatalf("relevance pages: %q then %q", names(page.Items), names(rest.Items))
		}
		// An explicit sort orders the matches instead of relevance.
		if got := list(t, s, catalog.Filter{Q: "espresso", Sort: catalog.SortPrice}).Items; !slices.Equal(names(got), []string{"Kettle", "Coffee Grinder", "Espresso Machine Deluxe"}) {
			t.Fatalf("search sorted by price: %q", names(got))
		}

		for _, q := range []string{`"espresso`, `espresso*`, `-espresso`, `espresso NEAR machine`, `(espresso) OR kettle`,
			`'; DROP TABLE products; --`, `espresso' OR '1'='1`, `name:espresso`, `^espresso`, `"`, `***`, `NOT`, `AND OR`} {
			f := catalog.Filter{Q: q}
			f, err := f.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.List(t.Context(), f); err != nil {
				t.Errorf("q=%q: %v", q, err)
			}
		}
		if n, err := s.Count(t.Context()); err != nil || n != 3 {
			t.Fatalf("after hostile queries: %d products, %v", n, err)
		}

		// The index follows updates and deletes.
		renamed := obvious
		renamed.Name, renamed.Description = "Ristretto Maker", "Small and strong."
		if _, err := s.Update(t.Context(), renamed, 1); err != nil {
			t.Fatal(err)
		}
		if got := list(t, s, catalog.Filter{Q: "deluxe"}).Items; len(got) != 0 {
			t.Fatalf("old name still found: %q", names(got))
		}
		if got := list(t, s, catalog.Filter{Q: "ristretto"}).Items; len(got) != 1 {
			t.Fatalf("new name not found: %q", names(got))
		}
		if err := s.Delete(t.Context(), other.ID, 1); err != nil {
			t.Fatal(err)
		}
		if got := list(t, s, catalog.Filter{Q: "kettle"}).Items; len(got) != 0 {
			t.Fatalf("deleted product found: %q", names(got))
		}
	})
}

// TestProductsSearchWindow: a relevance page ranks the newest matches of its whole filter
// (catalog.RankedMatches, lowered here to 4), and only those.
func TestProductsSearchWindow(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		db.SetRankedMatches(4)
		s := db.Products()
		// Added first, so the oldest: the best match for "espresso" by far, and the only one
		// at home, sold out and dear.
		strong := product("Espresso Espresso", "home", "kitchen", 50000, 0, t0)
		strong.Description = "Espresso machine: espresso, every morning."
		mustInsert(t, s, strong)
		// Then five that mention it once in a long description, each added after the last.
		var weak []catalog.Product
		for i := range 5 {
			w := product(fmt.Sprintf("Grinder %d", i+1), "kitchen", "", int64(i+1)*1000, 5, t0.Add(time.Duration(i+1)*time.Minute))
			w.Description = "Burr grinder with forty settings, from french press and pour over to espresso, and a timer."
			weak = append(weak, w)
			mustInsert(t, s, w)
		}
		// Two mentions of "ristretto", the better one older: fewer matches than the window.
		rare := product("Ristretto Ristretto", "home", "kitchen", 900, 3, t0)
		mustInsert(t, s, rare)
		rareWeak := product("Tamper", "home", "kitchen", 900, 3, t0)
		rareWeak.Description = "Presses the grounds evenly before a shot of espresso or ristretto, for cafes and homes."
		mustInsert(t, s, rareWeak)
		window := []string{rareWeak.ID, weak[4].ID, weak[3].ID, weak[2].ID} // the newest 4 matches of "espresso"

		ids := func(ps []catalog.Product) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				out[i] = p.ID
			}
			return out
		}
		sameSet := func(a, b []string) bool {
			a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
			return slices.Equal(a, b)
		}

		// The strong match is older than the window: weak newer ones are ranked, it is not.
		first := list(t, s, catalog.Filter{Q: "espresso"})
		if !sameSet(ids(first.Items), window) || first.NextCursor != "" {
			t.Fatalf("first page %q (next %q); want the 4 newest matches and no next page", names(first.Items), first.NextCursor)
		}
		// Paging walks the window without repeats or gaps, and ends with it.
		var walked []string
		f := catalog.Filter{Q: "espresso", Limit: 3}
		for pages := 1; ; pages++ {
			page := list(t, s, f)
			walked = append(walked, ids(page.Items)...)
			if page.NextCursor == "" {
				break
			}
			if pages == 3 {
				t.Fatalf("more than 2 pages of 3 over a window of 4: %q", walked)
			}
			f.Cursor = page.NextCursor
		}
		if !slices.Equal(walked, ids(first.Items)) {
			t.Fatalf("pages of 3 walked %q; the single page held %q", walked, ids(first.Items))
		}

		// A term with fewer matches than the window ranks them all: the older, better one first.
		if got := list(t, s, catalog.Filter{Q: "ristretto"}).Items; !slices.Equal(ids(got), []string{rare.ID, rareWeak.ID}) {
			t.Fatalf("ristretto ranked %q; want the older, better match first", names(got))
		}

		// The filter's other conditions apply inside the window: a filtered search finds its
		// matches however old they are.
		i64 := func(n int64) *int64 { return &n }
		no := false
		for name, tc := range map[string]struct {
			f    catalog.Filter
			want []string
		}{
			"category": {catalog.Filter{Q: "espresso", Category: "home"}, []string{strong.ID, rareWeak.ID}},
			"sold out": {catalog.Filter{Q: "espresso", InStock: &no}, []string{strong.ID}},
			"cheap":    {catalog.Filter{Q: "espresso", MaxPrice: i64(2000)}, []string{rareWeak.ID, weak[1].ID, weak[0].ID}},
			"dear":     {catalog.Filter{Q: "espresso", MinPrice: i64(10000)}, []string{strong.ID}},
		} {
			if got := ids(list(t, s, tc.f).Items); !sameSet(got, tc.want) {
				t.Errorf("%s: got %q; want %q", name, got, tc.want)
			}
		}

		// Other sorts are not bounded: every match, in their order.
		if got := list(t, s, catalog.Filter{Q: "espresso", Sort: catalog.SortOldest}).Items; len(got) != 7 {
			t.Fatalf("oldest first: %d matches %q; want all 7", len(got), names(got))
		}
	})
}

func TestProductsBadCursor(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		for i := range 3 {
			mustInsert(t, s, product(fmt.Sprint("P", i), "toys", "", int64(i), 1, t0.Add(time.Duration(i)*time.Second)))
		}
		byPrice := list(t, s, catalog.Filter{Sort: catalog.SortPrice, Limit: 1}).NextCursor
		for name, f := range map[string]catalog.Filter{
			"garbage":       {Cursor: "!!!"},
			"not json":      {Cursor: "bm90IGpzb24"},
			"another sort":  {Cursor: byPrice, Sort: catalog.SortName},
			"wrong key":     {Cursor: plaza.EncodeCursor(map[string]any{"s": "price", "k": "cheap", "i": "x"}), Sort: catalog.SortPrice},
			"missing id":    {Cursor: plaza.EncodeCursor(map[string]any{"s": "price", "k": 1}), Sort: catalog.SortPrice},
			"time mismatch": {Cursor: plaza.EncodeCursor(map[string]any{"s": "-created_at", "k": 5, "i": "x"})},
		} {
			f, err := f.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.List(t.Context(), f)
			var pe *plaza.Error
			if plaza.ErrorCodeOf(err) != plaza.EBadRequest || !errors.As(err, &pe) || len(pe.Fields) != 1 || pe.Fields[0].Field != "cursor" {
				t.Errorf("%s: %v; want bad_request naming cursor", name, err)
			}
		}
	})
}

// TestProductsListUnnormalized: a filter that skipped Normalize is refused, never a panic
// or a query the database rejects.
func TestProductsListUnnormalized(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := db.Products()
		mustInsert(t, s, product("P", "toys", "", 1, 1, t0))
		for name, f := range map[string]catalog.Filter{
			"zero limit":              {Sort: catalog.SortNewest},
			"negative limit":          {Sort: catalog.SortNewest, Limit: -1},
			"no sort":                 {Limit: 1},
			"relevance without query": {Sort: catalog.SortRelevance, Limit: 1},
		} {
			if _, err := s.List(t.Context(), f); plaza.ErrorCodeOf(err) != plaza.EBadRequest {
				t.Errorf("%s: %v; want bad_request", name, err)
			}
		}
	})
}

func TestProductsPathCountsAndDemo(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		s := db.Products()
		demo := []catalog.Product{
			product("a", "electronics", "laptops/gaming", 1, 1, t0),
			product("b", "electronics", "laptops/gaming", 1, 1, t0),
			product("c", "electronics", "", 1, 1, t0),
			product("d", "home", "kitchen", 1, 1, t0),
		}
		// Two instances starting together: one seeds.
		results := make(chan bool, 2)
		for range 2 {
			go func() {
				ok, err := s.InsertDemo(context.WithoutCancel(ctx), demo)
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		if a, b := <-results, <-results; a == b {
			t.Fatalf("InsertDemo from two instances: %v and %v; want exactly one to seed", a, b)
		}
		counts, err := s.PathCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(counts, func(a, b catalog.PathCount) int {
			return strings.Compare(a.Category+"/"+a.Subcategory, b.Category+"/"+b.Subcategory)
		})
		want := []catalog.PathCount{
			{Category: "electronics", Count: 1},
			{Category: "electronics", Subcategory: "laptops/gaming", Count: 2},
			{Category: "home", Subcategory: "kitchen", Count: 1},
		}
		if !slices.Equal(counts, want) {
			t.Fatalf("PathCounts = %+v; want %+v", counts, want)
		}
		// Emptied later, the catalog is not seeded again.
		for _, p := range demo {
			if err := s.Delete(ctx, p.ID, 1); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := s.InsertDemo(ctx, demo); ok || err != nil {
			t.Fatalf("InsertDemo after the demo was deleted: %v, %v", ok, err)
		}
	})
}

func TestProductsDemoSkipsNonEmptyDatabase(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s := db.Products()
	mustInsert(t, s, product("mine", "toys", "", 1, 1, t0))
	if ok, err := s.InsertDemo(t.Context(), []catalog.Product{product("demo", "toys", "", 1, 1, t0)}); ok || err != nil {
		t.Fatalf("InsertDemo into a catalog with products: %v, %v", ok, err)
	}
	if n, _ := s.Count(t.Context()); n != 1 {
		t.Fatalf("%d products", n)
	}
}

// BenchmarkProductsList measures filtered pages over 100,000 generated products:
//
//	go test -run '^$' -bench ProductsList -benchtime 2000x ./internal/store/
func BenchmarkProductsList(b *testing.B) {
	n := benchProducts()
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			db := storetest.Open(b, dialect)
			s := db.Products()
			g := catalog.NewGenerator(7, t0)
			for done := 0; done < n; done += catalog.SeedBatch {
				batch := make([]catalog.Product, catalog.SeedBatch)
				for i := range batch {
					batch[i] = g.Next()
				}
				if err := s.Insert(b.Context(), batch...); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Analyze(b.Context()); err != nil {
				b.Fatal(err)
			}
			yes, lo, hi, narrow := true, int64(10000), int64(50000), int64(10050)
			for name, f := range map[string]catalog.Filter{
				"category_by_price":       {Category: "electronics", Sort: catalog.SortPrice},
				"subcategory_in_stock":    {Category: "electronics", Subcategory: "audio", InStock: &yes},
				"path_in_stock_by_price":  {Category: "electronics", Subcategory: "audio", InStock: &yes, Sort: catalog.SortPriceDesc},
				"deep_path_by_name":       {Category: "sports", Subcategory: "outdoors/camping/tents", Sort: catalog.SortName},
				"price_range_newest":      {MinPrice: &lo, MaxPrice: &hi},
				"narrow_price_newest":     {MinPrice: &lo, MaxPrice: &narrow},
				"category_price_range":    {Category: "home", MinPrice: &lo, MaxPrice: &hi, Sort: catalog.SortName},
				"search_relevance":        {Q: "wireless headphones"},
				"search_in_category_name": {Q: "coffee", Category: "grocery", Sort: catalog.SortName},
				"deep_page_by_name":       {Sort: catalog.SortName},
			} {
				b.Run(name, func(b *testing.B) {
					f, err := f.Normalize()
					if err != nil {
						b.Fatal(err)
					}
					if name == "deep_page_by_name" { // start 50 pages in
						for range 50 {
							page, err := s.List(b.Context(), f)
							if err != nil {
								b.Fatal(err)
							}
							f.Cursor = page.NextCursor
						}
					}
					for b.Loop() {
						if _, err := s.List(b.Context(), f); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// benchProducts is how many products the store's benchmarks seed: 100,000, or under -short
// (make test's run of every benchmark once, which checks they work) a few batches.
func benchProducts() int {
	if testing.Short() {
		return 4 * catalog.SeedBatch
	}
	return 100_000
}
