package graphql

import (
	"context"

	"plaza/internal/catalog"
	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

type mutationResolver struct{ *resolver }

func (r mutationResolver) Register(ctx context.Context, in RegisterInput) (*users.User, error) {
	u, err := r.users.Register(ctx, users.NewUser{Name: in.Name, Email: in.Email, Password: in.Password, Role: deref(in.Role)})
	return ret(u, err)
}

func (r mutationResolver) Login(ctx context.Context, email, password string) (*users.Tokens, error) {
	t, err := r.users.Login(ctx, email, password)
	return ret(t, err)
}

func (r mutationResolver) RefreshToken(ctx context.Context, refreshToken string) (*users.Tokens, error) {
	t, err := r.users.Refresh(ctx, refreshToken)
	return ret(t, err)
}

func (r mutationResolver) Logout(ctx context.Context, refreshToken string) (bool, error) {
	if err := r.users.Logout(ctx, refreshToken); err != nil {
		return false, err
	}
	return true, nil
}

func (r mutationResolver) UpdateUser(ctx context.Context, id string, in UpdateUserInput, ifMatch *string) (*users.User, error) {
	u, err := r.users.Update(ctx, id, expect(id, ifMatch), users.Changes{
		Name: in.Name, Email: in.Email, Password: in.Password, Role: in.Role, CurrentPassword: in.CurrentPassword,
	})
	return ret(u, err)
}

func (r mutationResolver) DeleteUser(ctx context.Context, id string, ifMatch *string) (string, error) {
	if err := r.users.Delete(ctx, id, expect(id, ifMatch)); err != nil {
		return "", err
	}
	return id, nil
}

func (r mutationResolver) CreateProduct(ctx context.Context, in ProductInput) (*catalog.Product, error) {
	p, err := r.catalog.Create(ctx, catalog.Input{
		Name: in.Name, Description: deref(in.Description), PriceCents: &in.PriceCents, Currency: deref(in.Currency),
		Category: in.Category, Subcategory: deref(in.Subcategory), Stock: deref(in.Stock),
	})
	return ret(p, err)
}

// UpdateProduct changes the fields given, as a REST merge patch does: on the stored
// product, and only if ifMatch (when given) still names its version.
func (r mutationResolver) UpdateProduct(ctx context.Context, id string, in ProductPatch, ifMatch *string) (*catalog.Product, error) {
	p, err := r.catalog.Patch(ctx, id, expect(id, ifMatch), func(cur catalog.Input) (catalog.Input, error) {
		set(&cur.Name, in.Name)
		set(&cur.Description, in.Description)
		if in.PriceCents != nil {
			cur.PriceCents = in.PriceCents
		}
		set(&cur.Currency, in.Currency)
		set(&cur.Category, in.Category)
		set(&cur.Subcategory, in.Subcategory)
		set(&cur.Stock, in.Stock)
		return cur, nil
	})
	return ret(p, err)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (r mutationResolver) DeleteProduct(ctx context.Context, id string, ifMatch *string) (string, error) {
	if _, err := r.catalog.Delete(ctx, id, expect(id, ifMatch)); err != nil {
		return "", err
	}
	return id, nil
}

func (r mutationResolver) CreateRoom(ctx context.Context, slug, name string) (*chat.Room, error) {
	room, err := r.chat.CreateRoom(ctx, slug, name)
	return ret(room, err)
}

func (r mutationResolver) SendMessage(ctx context.Context, room, text string, clientID *string) (*chat.Message, error) {
	m, err := r.chat.Send(ctx, room, text, deref(clientID))
	if err != nil && plaza.ErrorCodeOf(err) == plaza.EUnavailable && m.ID != "" {
		// Stored but not announced: the message exists, and the error says who missed it.
		return &m, err
	}
	return ret(m, err)
}

func (r mutationResolver) DeleteMessage(ctx context.Context, room, id string) (string, error) {
	if err := r.chat.DeleteMessage(ctx, room, id); err != nil {
		return "", err
	}
	return id, nil
}
