package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/catalog"
	"plaza/internal/chat"
	"plaza/internal/etag"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// Conversions between the domain types and their messages, one per type.

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func userPB(u users.User) *plazav1.User {
	return &plazav1.User{
		Id: u.ID, Name: u.Name, Email: u.Email, Role: rolePB(u.Role),
		CreatedAt: timestamp(u.CreatedAt), UpdatedAt: timestamp(u.UpdatedAt),
		Version: u.Version, Etag: etag.Make(u.ID, u.Version),
	}
}

func rolePB(r plaza.Role) plazav1.Role {
	switch r {
	case plaza.RoleUser:
		return plazav1.Role_ROLE_USER
	case plaza.RoleAdmin:
		return plazav1.Role_ROLE_ADMIN
	}
	return plazav1.Role_ROLE_UNSPECIFIED
}

// role is the domain role of r; ROLE_UNSPECIFIED is "", which the services read as
// "the default" on registration and refuse as a role to change to.
func role(r plazav1.Role) plaza.Role {
	switch r {
	case plazav1.Role_ROLE_USER:
		return plaza.RoleUser
	case plazav1.Role_ROLE_ADMIN:
		return plaza.RoleAdmin
	}
	return ""
}

func tokensPB(t users.Tokens) *plazav1.Tokens {
	return &plazav1.Tokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresIn: int32(t.ExpiresIn)}
}

func productPB(p catalog.Product) *plazav1.Product {
	price := p.PriceCents
	return &plazav1.Product{
		Id: p.ID, Name: p.Name, Description: p.Description, PriceCents: &price, Currency: p.Currency,
		Category: p.Category, Subcategory: p.Subcategory, Stock: p.Stock, Version: p.Version,
		CreatedAt: timestamp(p.CreatedAt), UpdatedAt: timestamp(p.UpdatedAt), Etag: etag.Make(p.ID, p.Version),
	}
}

// input is what a client may set of a product message: the server's fields (id, version,
// etag, times) are not read.
func input(p *plazav1.Product) catalog.Input {
	return catalog.Input{
		Name: p.GetName(), Description: p.GetDescription(), PriceCents: p.PriceCents, Currency: p.GetCurrency(),
		Category: p.GetCategory(), Subcategory: p.GetSubcategory(), Stock: p.GetStock(),
	}
}

func messagePB(m chat.Message) *plazav1.Message {
	return &plazav1.Message{Id: m.ID, Room: m.Room, UserId: m.UserID, UserName: m.UserName, Text: m.Text,
		SentAt: timestamp(m.SentAt), ClientId: m.ClientID}
}

func messagesPB(ms []chat.Message) []*plazav1.Message {
	out := make([]*plazav1.Message, len(ms))
	for i, m := range ms {
		out[i] = messagePB(m)
	}
	return out
}

func membersPB(ms []chat.Member) []*plazav1.Member {
	out := make([]*plazav1.Member, len(ms))
	for i, m := range ms {
		out[i] = &plazav1.Member{Id: m.ID, Name: m.Name}
	}
	return out
}
