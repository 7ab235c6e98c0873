package app

import (
	"context"
	"log/slog"

	"plaza/internal/catalog"
	"plaza/internal/config"
)

// newCatalog builds the catalog service over the backends. In development a database
// that never had products gets the demo catalog, so a newcomer has something to browse.
func newCatalog(ctx context.Context, cfg config.Config, d *deps) (*catalog.Service, error) {
	svc := catalog.NewService(d.db.Products(), d.cache, d.bus, d.log)
	if cfg.Production() {
		return svc, nil
	}
	seeded, err := svc.SeedDemo(ctx)
	if err != nil {
		return nil, err
	}
	if seeded {
		d.log.Info("demo catalog seeded", "products", catalog.DemoProducts)
	}
	return svc, nil
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
	svc := catalog.NewService(d.db.Products(), d.cache, d.bus, log)
	if err := svc.Seed(ctx, n, progress); err != nil {
		return 0, err
	}
	return svc.Count(ctx)
}
