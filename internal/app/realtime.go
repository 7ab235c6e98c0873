package app

import (
	"context"

	"plaza/internal/chat"
	"plaza/internal/config"
	"plaza/internal/realtime"
	"plaza/internal/users"
)

// newRealtime builds the chat service and the real-time transport over the backends.
// Presence lives in Redis when there is one, so every instance sees every member; shutdown
// is the context whose end closes every stream.
func newRealtime(cfg config.Config, d *deps, accounts *users.Service, shutdown context.Context) (*chat.Service, *realtime.Server) {
	var presence chat.PresenceStore = chat.NewPresenceMemory(cfg.PresenceTTL, nil)
	if d.redis != nil {
		presence = chat.NewPresenceRedis(d.redis, "plaza:presence:", cfg.PresenceTTL, nil)
	}
	svc := chat.NewService(chat.Options{
		Store:    d.db.Chat(),
		Presence: presence,
		Bus:      d.bus,
		CallerName: func(ctx context.Context) (string, error) {
			u, err := accounts.Me(ctx)
			return u.Name, err
		},
		Logger: d.log,
	})
	rt := realtime.New(realtime.Options{
		Chat:            svc,
		Bus:             d.bus,
		Tickets:         d.state,
		CheckSession:    accounts.CheckSession,
		Origins:         cfg.CORSOrigins,
		MaxConnsPerUser: cfg.WSMaxConns,
		PresenceTTL:     cfg.PresenceTTL,
		Shutdown:        shutdown,
		Logger:          d.log,
		Registerer:      d.registry,
	})
	return svc, rt
}
