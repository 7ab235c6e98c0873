package graphql

import (
	"context"

	"plaza/internal/bus"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// The services the resolvers call, declared as exactly what they use: internal/app passes
// *users.Service, *cached.Catalog, *chat.Service and the bus; tests may pass anything that
// behaves. Every rule (who may, what is valid) is theirs, so GraphQL and REST agree by
// construction.

// Users is the users and auth service.
type Users interface {
	Register(ctx context.Context, in users.NewUser) (users.User, error)
	Me(ctx context.Context) (users.User, error)
	Get(ctx context.Context, id string) (users.User, error)
	GetMany(ctx context.Context, ids []string) ([]users.User, error)
	List(ctx context.Context, page plaza.PageRequest) (plaza.Page[users.User], error)
	Update(ctx context.Context, id string, expect plaza.Expect, c users.Changes) (users.User, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) error
	Login(ctx context.Context, email, password string) (users.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (users.Tokens, error)
	Logout(ctx context.Context, refreshToken string) error
	Authenticate(ctx context.Context, token string) (plaza.Principal, error)
}

// Catalog is the product catalog behind its cache.
type Catalog interface {
	ProductJSON(ctx context.Context, id string) (cached.Encoded, error)
	CategoriesJSON(ctx context.Context) (cached.Encoded, error)
	List(ctx context.Context, f catalog.Filter) (catalog.Page, error)
	Create(ctx context.Context, in catalog.Input) (catalog.Product, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(catalog.Input) (catalog.Input, error)) (catalog.Product, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) (catalog.Product, error)
}

// Chat is the chat service.
type Chat interface {
	CreateRoom(ctx context.Context, slug, name string) (chat.Room, error)
	Rooms(ctx context.Context) ([]chat.Room, error)
	History(ctx context.Context, room string, page plaza.PageRequest) (plaza.Page[chat.Message], error)
	Send(ctx context.Context, room, text, clientID string) (chat.Message, error)
	DeleteMessage(ctx context.Context, room, id string) error
}

// Events is the bus as subscriptions read it: a change published on any instance reaches
// every instance's subscribers.
type Events interface {
	Subscribe(ctx context.Context, stream string, after string) (bus.Subscription, error)
}

// Sessions puts a signed-in caller's socket under the session checks of the other
// long-lived streams (realtime.Server): end is called once their session has ended, and
// stop takes the socket out of the checks.
type Sessions interface {
	WatchSession(ctx context.Context, end func()) (stop func())
}
