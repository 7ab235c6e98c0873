package catalog

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"plaza/internal/plaza"
)

// DemoProducts is how many products a fresh development database starts with.
const DemoProducts = 240

// SeedBatch is how many products one seeding transaction inserts.
const SeedBatch = 1000

//go:embed demo.json
var demoJSON []byte

type demoLeaf struct {
	Path     string   `json:"path"`
	Min      int64    `json:"min"`
	Max      int64    `json:"max"`
	Brands   []string `json:"brands"`
	Nouns    []string `json:"nouns"`
	Models   []string `json:"models"`
	Features []string `json:"features"`
}

type demoParts struct {
	Leaves   []demoLeaf `json:"leaves"`
	Closings []string   `json:"closings"`
}

var demo = func() demoParts {
	var d demoParts
	if err := json.Unmarshal(demoJSON, &d); err != nil {
		panic("catalog: demo.json: " + err.Error())
	}
	return d
}()

// Generator makes realistic products from the embedded name parts: the same seed gives the
// same products (IDs and times aside), with no network and no data files.
type Generator struct {
	rng *rand.Rand
	now time.Time
}

// NewGenerator returns a generator whose products were created over the 90 days before
// now.
func NewGenerator(seed uint64, now time.Time) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: now.UTC()}
}

// Next returns one new product.
func (g *Generator) Next() Product {
	r := g.rng
	leaf := demo.Leaves[r.IntN(len(demo.Leaves))]
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }

	brand, noun, model := pick(leaf.Brands), pick(leaf.Nouns), pick(leaf.Models)
	name := strings.TrimSpace(brand + " " + noun + " " + model)
	f1 := pick(leaf.Features)
	f2 := pick(leaf.Features)
	for f2 == f1 && len(leaf.Features) > 1 {
		f2 = pick(leaf.Features)
	}
	desc := fmt.Sprintf("%s by %s, with %s and %s. %s",
		strings.TrimSpace(noun+" "+model), brand, f1, f2, pick(demo.Closings))

	// Prices end in 99 cents, as shops like them.
	price := (leaf.Min+r.Int64N(leaf.Max-leaf.Min+1))/100*100 + 99
	var stock int64
	if r.IntN(10) > 0 { // one in ten is sold out
		stock = 1 + r.Int64N(500)
	}
	category, sub, _ := strings.Cut(leaf.Path, "/")
	created := g.now.Add(-time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Microsecond)
	return Product{
		ID: plaza.NewID(), Name: name, Description: desc, PriceCents: price, Currency: DefaultCurrency,
		Category: category, Subcategory: sub, Stock: stock, Version: 1,
		CreatedAt: created, UpdatedAt: created,
	}
}

// Seed inserts n generated products in transactions of SeedBatch, calling progress with
// the running total after each. It is for trusted callers (`plaza seed`, start-up), not
// for transports: it neither authorizes nor publishes an event per product.
func (s *Service) Seed(ctx context.Context, n int, progress func(done int)) error {
	g := NewGenerator(uint64(s.now().UnixNano()), s.now())
	batch := make([]Product, 0, min(n, SeedBatch))
	for done := 0; done < n; {
		batch = batch[:0]
		for range min(SeedBatch, n-done) {
			batch = append(batch, g.Next())
		}
		if err := s.store.Insert(ctx, batch...); err != nil {
			return fmt.Errorf("seed: after %d of %d products: %w", done, n, err)
		}
		done += len(batch)
		if progress != nil {
			progress(done)
		}
	}
	if err := s.store.Analyze(ctx); err != nil {
		return fmt.Errorf("seed: analyze: %w", err)
	}
	return nil
}

// SeedDemo gives a fresh database its demo catalog: DemoProducts products over every
// demo category, the same ones on every machine. It does nothing when the database has
// products or had demo data offered before, so deleting the demo products is final.
func (s *Service) SeedDemo(ctx context.Context) (bool, error) {
	g := NewGenerator(1, s.now())
	ps := make([]Product, DemoProducts)
	for i := range ps {
		ps[i] = g.Next()
	}
	return s.store.InsertDemo(ctx, ps)
}

// Count returns how many products the catalog holds.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }
