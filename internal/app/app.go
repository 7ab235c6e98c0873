// Package app wires Plaza together: it opens the backends the configuration names, builds the
// services and transports on top of them, serves, and shuts everything down in order. It is
// the only place that knows every concrete implementation.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/config"
	"plaza/internal/redisx"
	"plaza/internal/store"
)

// deps are the backends every service stands on.
type deps struct {
	log      *slog.Logger
	registry *prometheus.Registry
	db       *store.DB
	redis    *redis.Client
	bus      bus.Bus
	cache    *cache.Cache // content: products, categories; bounded by PLAZA_CACHE_SIZE
	// state holds security state (revoked token IDs, login-throttle counters, user records read on every request)
	// apart from content, so a burst of product reads can never evict a revocation.
	state *cache.Cache
}

// maxLocalTier caps the in-process tier kept in front of Redis (entries): Redis holds the
// rest.
const maxLocalTier = 10_000

// stateEntries bounds the in-process security state. Its entries are small and expire
// within 15 minutes, so the bound is far above what even a busy instance holds.
const stateEntries = 1_000_000

// storeConfig is the store's part of cfg.
func storeConfig(cfg config.Config, log *slog.Logger) store.Config {
	mmap := cfg.SQLiteMmapBytes
	if mmap == 0 {
		mmap = -1 // the store reads 0 as its default
	}
	return store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log, SQLiteMmapBytes: mmap}
}

// openDeps opens the store (and migrates it), then the cache and the bus: Redis-backed when
// REDIS_URL is set, in-process otherwise.
func openDeps(ctx context.Context, cfg config.Config, log *slog.Logger) (*deps, error) {
	d := &deps{log: log, registry: prometheus.NewRegistry()}
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := store.Open(ctx, storeConfig(cfg, log))
	if err != nil {
		return nil, storeError(cfg, err)
	}
	d.db = db
	if err := db.Migrate(ctx, "up", io.Discard); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}

	var backend, stateBackend cache.Backend
	local := 0
	if cfg.RedisURL != "" {
		opts, err := cache.ParseRedisURL(cfg.RedisURL)
		if err != nil {
			db.Close()
			return nil, &config.Error{Var: "REDIS_URL", Msg: err.Error()}
		}
		redisx.RouteLogs(log)
		d.redis = redis.NewClient(opts)
		// One breaker for every user of the client (cache, bus, counters, presence): a dead
		// Redis then costs each call microseconds instead of a dial with retries.
		d.redis.AddHook(redisx.NewBreaker(redisx.BreakerOptions{Logger: log, Registerer: d.registry}))
		backend = cache.NewRedis(d.redis, "plaza:cache:")
		stateBackend = cache.NewRedis(d.redis, "plaza:state:")
		d.bus = bus.NewRedis(d.redis, bus.RedisOptions{Registerer: d.registry, Logger: log})
		local = min(cfg.CacheSize, maxLocalTier)
	} else {
		backend = cache.NewMemory(cfg.CacheSize)
		stateBackend = cache.NewMemory(stateEntries)
		d.bus = bus.NewMemory(bus.MemoryOptions{Registerer: d.registry})
	}
	content := cache.Options{Logger: log, Registerer: d.registry, Bus: d.bus, LocalSize: local}
	state := content
	if local > 0 {
		// Invalidations also travel through PostgreSQL (LISTEN/NOTIFY, one connection per
		// cache and instance), so the local tiers stay in use while Redis is down.
		if n := db.Notifications("plaza_cache"); n != nil {
			content.Notifications = n
			state.Notifications = db.Notifications("plaza_state")
		}
	}
	d.cache = cache.New(backend, content)
	d.state = cache.New(stateBackend, state)
	log.Info("backends open", "store", string(db.Dialect()), "cache_and_bus", map[bool]string{true: "redis", false: "memory"}[d.redis != nil])
	return d, nil
}

// storeError names the setting behind a store that did not open: DATABASE_URL, or the data
// directory SQLite lives in.
func storeError(cfg config.Config, err error) error {
	v := "PLAZA_DATA_DIR"
	if cfg.DatabaseURL != "" {
		v = "DATABASE_URL"
	}
	return &config.Error{Var: v, Msg: strings.TrimPrefix(err.Error(), "store: ")}
}

// close releases the backends in reverse order of opening.
func (d *deps) close() error {
	var errs []error
	if d.state != nil {
		errs = append(errs, d.state.Close())
	}
	if d.cache != nil {
		errs = append(errs, d.cache.Close())
	}
	if d.bus != nil {
		errs = append(errs, d.bus.Close())
	}
	if d.redis != nil {
		errs = append(errs, d.redis.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// Migrate runs `plaza migrate up | down | status` against the configured database.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, command string, out io.Writer) error {
	switch command {
	case "up", "down", "status":
	default:
		return &config.Error{Var: "migrate", Msg: fmt.Sprintf("expected up, down or status, got %q", command)}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, storeConfig(cfg, log))
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, command, out)
}
