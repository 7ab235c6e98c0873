// Package cached puts the shared cache in front of the catalog service for transports:
// reads are served from their encoded form (the JSON body and the entity tag), so a hit
// costs no query and no encoding, and every write made through it drops the keys it
// affects on every instance. The service below knows nothing of caching or ETags; it
// reads a product already encoded (Service.ProductJSON), as the store can build it.
//
// Every transport that writes to the catalog goes through the same *Catalog (internal/app
// wires it), so no write can leave a stale entry behind; the one-minute TTL only bounds a
// load that raced a write (read the old row, stored it after the write's delete) or a
// delete Redis missed while down when the writing instance stopped before Redis returned
// (otherwise the cache retries it).
package cached

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/etag"
	"plaza/internal/plaza"
)

// Cache is what the decorator needs from the shared cache (cache.Cache implements it).
type Cache interface {
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func(context.Context) ([]byte, error)) ([]byte, bool, error)
	Delete(ctx context.Context, keys ...string) error
}

// Service is the part of catalog.Service the decorator wraps.
type Service interface {
	Product(ctx context.Context, id string) (catalog.Product, error)
	ProductJSON(ctx context.Context, id string) ([]byte, int64, error)
	Categories(ctx context.Context) ([]*catalog.Category, error)
	List(ctx context.Context, f catalog.Filter) (catalog.Page, error)
	Create(ctx context.Context, in catalog.Input) (catalog.Product, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(catalog.Input) (catalog.Input, error)) (catalog.Product, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) (catalog.Product, error)
}

// Keys and lifetimes.
const (
	categoriesKey = "categories"
	productTTL    = time.Minute
	categoriesTTL = time.Minute
)

func productKey(id string) string { return "product:" + id }

// Catalog is the catalog service with cached reads. Lists pass through uncached: filters
// multiply keys, and the indexes answer a page in about a millisecond.
type Catalog struct {
	svc   Service
	cache Cache
	log   *slog.Logger
	// readThrough: product reads skip the cache (SkipProductCache).
	readThrough bool
}

// New wraps svc with cache.
func New(svc Service, cache Cache, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{svc: svc, cache: cache, log: log}
}

// SkipProductCache makes every product read go to the service, as a miss would, without
// storing the result: a benchmarking aid (PLAZA_PRODUCT_CACHE=off) that makes the uncached
// path measurable on every backend, Redis included. Writes still drop product entries, for
// instances that cache them. Call it before c serves.
func (c *Catalog) SkipProductCache() { c.readThrough = true }

// Encoded is a read in its encoded form: the JSON body (newline-terminated), the entity tag
// when the resource has one, and whether it came from the cache.
type Encoded struct {
	JSON []byte
	ETag string
	Hit  bool
}

// ProductJSON returns product id as JSON with its entity tag.
func (c *Catalog) ProductJSON(ctx context.Context, id string) (Encoded, error) {
	if c.readThrough {
		body, version, err := c.svc.ProductJSON(ctx, id)
		if err != nil {
			return Encoded{}, err
		}
		return Encoded{JSON: body, ETag: etag.Make(id, version)}, nil
	}
	load := func(ctx context.Context) ([]byte, error) {
		body, version, err := c.svc.ProductJSON(ctx, id)
		if err != nil {
			return nil, err
		}
		return productEntry(id, version, body), nil
	}
	val, hit, err := c.cache.GetOrLoad(ctx, productKey(id), productTTL, load)
	if err != nil {
		return Encoded{}, err
	}
	tag, body, ok := bytes.Cut(val, []byte{'\n'})
	if !ok {
		// Not written by productEntry (another version of Plaza sharing the cache): a miss.
		c.log.WarnContext(ctx, "catalog cache: unreadable product entry dropped", "key", productKey(id))
		c.forget(ctx, productKey(id))
		if val, err = load(ctx); err != nil {
			return Encoded{}, err
		}
		tag, body, _ = bytes.Cut(val, []byte{'\n'})
		hit = false
	}
	return Encoded{JSON: body, ETag: string(tag), Hit: hit}, nil
}

// productEntry is a product's cache entry: its entity tag, a newline, then its JSON body.
func productEntry(id string, version int64, body []byte) []byte {
	tag := etag.Make(id, version)
	entry := make([]byte, 0, len(tag)+1+len(body))
	entry = append(entry, tag...)
	entry = append(entry, '\n')
	return append(entry, body...)
}

// CategoriesJSON returns the category tree as JSON.
func (c *Catalog) CategoriesJSON(ctx context.Context) (Encoded, error) {
	val, hit, err := c.cache.GetOrLoad(ctx, categoriesKey, categoriesTTL, func(ctx context.Context) ([]byte, error) {
		tree, err := c.svc.Categories(ctx)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(tree); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	})
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{JSON: val, Hit: hit}, nil
}

// Product returns product id decoded, for transports that do not serve JSON. It reads
// through the same entry as ProductJSON.
func (c *Catalog) Product(ctx context.Context, id string) (catalog.Product, error) {
	if c.readThrough {
		return c.svc.Product(ctx, id)
	}
	enc, err := c.ProductJSON(ctx, id)
	if err != nil {
		return catalog.Product{}, err
	}
	var p catalog.Product
	if err := json.Unmarshal(enc.JSON, &p); err != nil {
		return c.svc.Product(ctx, id)
	}
	return p, nil
}

// List passes through: lists are not cached.
func (c *Catalog) List(ctx context.Context, f catalog.Filter) (catalog.Page, error) {
	return c.svc.List(ctx, f)
}

// Create adds a product; the category tree's counts change.
func (c *Catalog) Create(ctx context.Context, in catalog.Input) (catalog.Product, error) {
	p, err := c.svc.Create(ctx, in)
	if err == nil {
		c.forget(ctx, categoriesKey)
	}
	return p, err
}

// Replace sets every client field of product id.
func (c *Catalog) Replace(ctx context.Context, id string, in catalog.Input, expect plaza.Expect) (catalog.Product, error) {
	return c.Patch(ctx, id, expect, func(catalog.Input) (catalog.Input, error) { return in, nil })
}

// Patch changes product id; the tree is dropped too when the product moved category.
func (c *Catalog) Patch(ctx context.Context, id string, expect plaza.Expect, apply func(catalog.Input) (catalog.Input, error)) (catalog.Product, error) {
	if apply == nil {
		return c.svc.Patch(ctx, id, expect, nil)
	}
	var before catalog.Input
	p, err := c.svc.Patch(ctx, id, expect, func(cur catalog.Input) (catalog.Input, error) {
		before = cur
		return apply(cur)
	})
	if err != nil {
		return p, err
	}
	keys := []string{productKey(id)}
	if p.Category != before.Category || p.Subcategory != before.Subcategory {
		keys = append(keys, categoriesKey)
	}
	c.forget(ctx, keys...)
	return p, nil
}

// Delete removes product id.
func (c *Catalog) Delete(ctx context.Context, id string, expect plaza.Expect) (catalog.Product, error) {
	p, err := c.svc.Delete(ctx, id, expect)
	if err == nil {
		c.forget(ctx, productKey(id), categoriesKey)
	}
	return p, err
}

// CategoriesChanged drops the cached tree after products were added without going
// through Create (seeding).
func (c *Catalog) CategoriesChanged(ctx context.Context) { c.forget(ctx, categoriesKey) }

// forget drops keys on every instance after a committed write. It cannot undo the write,
// so a failure is logged (entries expire within their TTL), and it is not skipped because
// the client went away.
func (c *Catalog) forget(ctx context.Context, keys ...string) {
	ctx = context.WithoutCancel(ctx)
	if err := c.cache.Delete(ctx, keys...); err != nil {
		c.log.WarnContext(ctx, "catalog cache: invalidation failed; entries expire within their TTL", "keys", keys, "err", err)
	}
}
