package app

import (
	"context"
	"log/slog"

	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/config"
)

// newCatalog builds the catalog service over the backends and the cache in front of it
// that every transport reads and writes through. In development a database that never had
// products gets the demo catalog, so a newcomer has something to browse.
func newCatalog(ctx context.Context, cfg config.Config, d *deps) (*cached.Catalog, error) {
	svc, err := catalog.New(catalog.Options{Store: d.db.Products(), Logger: d.log, QueryTimeout: cfg.QueryTimeout})
	if err != nil {
		return nil, err
	}
	products := cached.New(svc, d.cache, d.log)
	if !cfg.ProductCache {
		products.SkipProductCache()
		d.log.Warn("product cache off (PLAZA_PRODUCT_CACHE=off): every product read queries the database")
	}
	if cfg.Production() {
		return products, nil
	}
	seeded, err := svc.SeedDemo(ctx)
	if err != nil {
		return nil, err
	}
	if seeded {
		products.CategoriesChanged(ctx)
		d.log.Info("demo catalog seeded", "products", catalog.DemoProducts)
	}
	return products, nil
}

// Seed runs `plaza seed --products n`: n generated products in transactions of
// catalog.SeedBatch, progress called after each. It returns how many products the catalog
// then holds.
func Seed(ctx context.Context, cfg config.Config, log *slog.Logger, n int, progress func(done int)) (int64, error) {
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := d.close(); err != nil {
			log.Error("closing backends", "err", err)
		}
	}()
	svc, err := catalog.New(catalog.Options{Store: d.db.Products(), Logger: log})
	if err != nil {
		return 0, err
	}
	if err := svc.Seed(ctx, n, progress); err != nil {
		return 0, err
	}
	cached.New(svc, d.cache, log).CategoriesChanged(ctx)
	return svc.Count(ctx)
}
