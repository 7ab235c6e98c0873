package app

import (
	"context"
	"log/slog"

	"plaza/internal/config"
)

// logStarted says, once serving, what an operator needs first: where the data lives, which
// listeners are up and, when the database has no admin yet, how to get one.
func logStarted(ctx context.Context, cfg config.Config, d *deps, httpAddr string, log *slog.Logger) {
	listeners := []string{"http " + httpAddr}
	if cfg.MetricsAddr != "" {
		listeners = append(listeners, "metrics "+cfg.MetricsAddr)
	}
	if cfg.DebugAddr != "" {
		listeners = append(listeners, "pprof "+cfg.DebugAddr)
	}
	log.Info("plaza started", "data", d.db.Location(), "listeners", listeners, "env", cfg.Env)
	hasAdmin, err := d.db.Users().AnyAdmin(ctx)
	if err == nil && !hasAdmin {
		log.Warn("no admin exists yet: set PLAZA_ADMIN_EMAIL and PLAZA_ADMIN_PASSWORD and restart, " +
			"or run `plaza user create --email … --name … --admin` with the same settings")
	}
}
