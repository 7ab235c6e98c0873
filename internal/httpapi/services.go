package httpapi

import (
	"context"
	"net/http"

	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// The services this transport calls, declared here as exactly what the handlers use, so
// the transport depends on behaviour, not on the concrete services (internal/app passes
// *users.Service and *cached.Catalog; handler tests may pass anything that behaves).

// Users is the users and auth service.
type Users interface {
	Register(ctx context.Context, in users.NewUser) (users.User, error)
	List(ctx context.Context, page plaza.PageRequest) (plaza.Page[users.User], error)
	Me(ctx context.Context) (users.User, error)
	Get(ctx context.Context, id string) (users.User, error)
	Update(ctx context.Context, id string, expect plaza.Expect, c users.Changes) (users.User, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(users.Editable) (users.Changes, error)) (users.User, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) error
	Login(ctx context.Context, email, password string) (users.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (users.Tokens, error)
	Logout(ctx context.Context, refreshToken string) error
}

// Catalog is the product catalog with its reads served encoded from the cache.
type Catalog interface {
	ProductJSON(ctx context.Context, id string) (cached.Encoded, error)
	CategoriesJSON(ctx context.Context) (cached.Encoded, error)
	List(ctx context.Context, f catalog.Filter) (catalog.Page, error)
	Create(ctx context.Context, in catalog.Input) (catalog.Product, error)
	Replace(ctx context.Context, id string, in catalog.Input, expect plaza.Expect) (catalog.Product, error)
	Patch(ctx context.Context, id string, expect plaza.Expect, apply func(catalog.Input) (catalog.Input, error)) (catalog.Product, error)
	Delete(ctx context.Context, id string, expect plaza.Expect) (catalog.Product, error)
}

// GraphQL is the GraphQL transport (internal/graphql implements it). ServeGraphQL returns
// an error only before a response starts (a WebSocket's foreign Origin, a body over the
// limit), answered here as a problem body; GraphQL errors it answers itself.
type GraphQL interface {
	ServeGraphQL(w http.ResponseWriter, r *http.Request) error
	ServePlayground(w http.ResponseWriter, r *http.Request)
}
