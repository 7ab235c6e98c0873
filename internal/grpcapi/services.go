package grpcapi

import (
	"context"

	"plaza/internal/bus"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// The services this transport calls, declared here as exactly what the handlers use (as
// internal/httpapi does), so the transport depends on behaviour, not on the concrete
// services: internal/app passes *users.Service, *cached.Catalog, *chat.Service and the bus.

// Authenticator turns a bearer token into a principal (users.Service.Authenticate).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (plaza.Principal, error)
}

// Users is the users and auth service.
type Users interface {
	Register(ctx context.Context, in users.NewUser) (users.User, error)
	List(ctx context.Context, page plaza.PageRequest) (plaza.Page[users.User], error)
	Me(ctx context.Context) (users.User, error)
	Get(ctx context.Context, id string) (users.User, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(users.Editable) (users.Changes, error)) (users.User, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) error
	Login(ctx context.Context, email, password string) (users.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (users.Tokens, error)
	Logout(ctx context.Context, refreshToken string) error
	// CheckSession tells a long-lived stream whether its caller's session still holds.
	CheckSession(ctx context.Context) error
}

// Catalog is the product catalog behind the shared cache (cached.Catalog): GetProduct
// reads the same entries REST does, and writes drop them on every instance.
type Catalog interface {
	// ProductJSON is the product's cache entry, which GetProduct reads on every call.
	ProductJSON(ctx context.Context, id string) (cached.Encoded, error)
	Product(ctx context.Context, id string) (catalog.Product, error)
	List(ctx context.Context, f catalog.Filter) (catalog.Page, error)
	Create(ctx context.Context, in catalog.Input) (catalog.Product, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(catalog.Input) (catalog.Input, error)) (catalog.Product, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) (catalog.Product, error)
}

// Chat is the chat service.
type Chat interface {
	Send(ctx context.Context, room, text, clientID string) (chat.Message, error)
	History(ctx context.Context, room string, req plaza.PageRequest) (plaza.Page[chat.Message], error)
	Join(ctx context.Context, room, conn, since string) (chat.Joined, error)
	Heartbeat(ctx context.Context, room, conn string) error
	Leave(ctx context.Context, room, conn string) error
}

// Subscriber is the part of the event bus the streams read.
type Subscriber interface {
	Subscribe(ctx context.Context, stream, after string) (bus.Subscription, error)
}
