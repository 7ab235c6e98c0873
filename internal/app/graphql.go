package app

import (
	"context"

	"plaza/internal/catalog/cached"
	"plaza/internal/chat"
	"plaza/internal/config"
	"plaza/internal/graphql"
	"plaza/internal/realtime"
	"plaza/internal/users"
)

// newGraphQL builds the GraphQL transport over the same services as REST; its
// subscriptions read the bus, streams' session checks close the sockets of callers whose
// session ended, and shutdown closes its WebSockets.
func newGraphQL(cfg config.Config, d *deps, accounts *users.Service, products *cached.Catalog, rooms *chat.Service, streams *realtime.Server, shutdown context.Context) *graphql.Server {
	return graphql.New(graphql.Options{
		Users:    accounts,
		Catalog:  products,
		Chat:     rooms,
		Events:   d.bus,
		Sessions: streams,
		Limits: graphql.Limits{
			MaxDepth:      cfg.GraphQL.MaxDepth,
			MaxComplexity: cfg.GraphQL.MaxComplexity,
			MaxAliases:    cfg.GraphQL.MaxAliases,
			APQCacheSize:  cfg.GraphQL.APQCacheSize,
		},
		Introspection: cfg.GraphQLIntrospection(),
		Origins:       cfg.CORSOrigins,
		Shutdown:      shutdown,
		Logger:        d.log,
	})
}
