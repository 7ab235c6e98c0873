package graphql

import (
	"context"
	"log/slog"

	"plaza/internal/catalog"
	"plaza/internal/chat"
	"plaza/internal/etag"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// resolver is the root of every resolver: the services and nothing else. Resolvers
// translate arguments into service calls and results into schema types; a rule written
// here would be a rule REST does not have.
type resolver struct {
	users   Users
	catalog Catalog
	chat    Chat
	events  Events
	log     *slog.Logger
	decoded decodedProducts
}

func (r *resolver) Query() QueryResolver               { return queryResolver{r} }
func (r *resolver) Mutation() MutationResolver         { return mutationResolver{r} }
func (r *resolver) Subscription() SubscriptionResolver { return subscriptionResolver{r} }
func (r *resolver) User() UserResolver                 { return userResolver{} }
func (r *resolver) Product() ProductResolver           { return productResolver{} }
func (r *resolver) Message() MessageResolver           { return messageResolver{} }

type userResolver struct{}

// Email is null when the service hid it from the caller (it is theirs or they are admin
// to see).
func (userResolver) Email(_ context.Context, u *users.User) (*string, error) {
	return nonEmpty(u.Email), nil
}

func (userResolver) Etag(_ context.Context, u *users.User) (string, error) {
	return etag.Make(u.ID, u.Version), nil
}

type productResolver struct{}

func (productResolver) Etag(_ context.Context, p *catalog.Product) (string, error) {
	return etag.Make(p.ID, p.Version), nil
}

type messageResolver struct{}

// Author loads through the operation's dataloader: the authors of a page of messages are
// one store call.
func (messageResolver) Author(ctx context.Context, m *chat.Message) (*users.User, error) {
	return userByID(ctx, m.UserID)
}

func (messageResolver) ClientID(_ context.Context, m *chat.Message) (*string, error) {
	return nonEmpty(m.ClientID), nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// expect is the precondition an ifMatch argument places on resource id, as If-Match does
// in REST.
func expect(id string, ifMatch *string) plaza.Expect {
	if ifMatch == nil {
		return plaza.Expect{}
	}
	return etag.Expect(id, *ifMatch)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
