package graphql

import (
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql/handler/lru"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// decodedSize is how many product versions the resolvers keep decoded.
const decodedSize = 1000

// decodedProducts are products decoded from the catalog cache's JSON, by entity tag. A tag
// names one version of one product, so an entry never goes stale and needs no
// invalidation: a write makes a new tag, and the old entry ages out. A product read again
// costs a lookup, not a JSON decode.
type decodedProducts struct{ lru *lru.LRU[catalog.Product] }

func newDecodedProducts() decodedProducts {
	return decodedProducts{lru: lru.New[catalog.Product](decodedSize)}
}

// product reads product id through the catalog cache, as GET /api/products/{id} does,
// decoding each version once.
func (r *resolver) product(ctx context.Context, id string) (*catalog.Product, error) {
	enc, err := r.catalog.ProductJSON(ctx, id)
	if err != nil {
		return nil, err
	}
	if p, ok := r.decoded.lru.Get(ctx, enc.ETag); ok && enc.ETag != "" {
		return &p, nil
	}
	var p catalog.Product
	if err := json.Unmarshal(enc.JSON, &p); err != nil {
		return nil, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	if enc.ETag != "" {
		r.decoded.lru.Add(ctx, enc.ETag, p)
	}
	return &p, nil
}
