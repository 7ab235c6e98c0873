package graphql

import (
	"context"
	"encoding/json"
	"slices"

	"plaza/internal/catalog"
	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

type queryResolver struct{ *resolver }

func (r queryResolver) Me(ctx context.Context) (*users.User, error) {
	u, err := r.users.Me(ctx)
	return ret(u, err)
}

func (r queryResolver) User(ctx context.Context, id string) (*users.User, error) {
	u, err := r.users.Get(ctx, id)
	return ret(u, err)
}

// Users pages forward in creation order; every user is a cursor of its own.
func (r queryResolver) Users(ctx context.Context, first *int64, after *string) (*UserConnection, error) {
	page, err := r.users.List(ctx, plaza.PageRequest{Limit: limit(first), Cursor: deref(after)})
	if err != nil {
		return nil, err
	}
	conn := &UserConnection{Edges: make([]UserEdge, len(page.Items)), PageInfo: &PageInfo{HasNextPage: page.NextCursor != ""}}
	for i := range page.Items {
		conn.Edges[i] = UserEdge{Cursor: users.Cursor(page.Items[i]), Node: &page.Items[i]}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// Product reads through the catalog cache, like GET /api/products/{id}.
func (r queryResolver) Product(ctx context.Context, id string) (*catalog.Product, error) {
	return r.product(ctx, id)
}

// Products pages forward over the same keyset cursors as REST: the store names the end
// of a page only, so the last edge carries the cursor and the others none.
func (r queryResolver) Products(ctx context.Context, filter *ProductFilter, sort *catalog.Sort, first *int64, after *string) (*ProductConnection, error) {
	f := catalog.Filter{Sort: deref(sort), Limit: limit(first), Cursor: deref(after)}
	if filter != nil {
		f.Category, f.Subcategory, f.Q = deref(filter.Category), deref(filter.Subcategory), deref(filter.Q)
		f.MinPrice, f.MaxPrice, f.InStock = filter.MinPrice, filter.MaxPrice, filter.InStock
	}
	page, err := r.catalog.List(ctx, f)
	if err != nil {
		return nil, err
	}
	conn := &ProductConnection{Edges: make([]ProductEdge, len(page.Items)), PageInfo: &PageInfo{HasNextPage: page.NextCursor != ""}}
	for i := range page.Items {
		conn.Edges[i] = ProductEdge{Node: &page.Items[i]}
	}
	if page.NextCursor != "" {
		conn.Edges[len(conn.Edges)-1].Cursor = &page.NextCursor
		conn.PageInfo.EndCursor = &page.NextCursor
	}
	return conn, nil
}

// Categories decodes the cached tree REST serves as it is.
func (r queryResolver) Categories(ctx context.Context) ([]catalog.Category, error) {
	enc, err := r.catalog.CategoriesJSON(ctx)
	if err != nil {
		return nil, err
	}
	tree := []catalog.Category{}
	if err := json.Unmarshal(enc.JSON, &tree); err != nil {
		return nil, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	return tree, nil
}

func (r queryResolver) Rooms(ctx context.Context) ([]chat.Room, error) {
	return r.chat.Rooms(ctx)
}

// Messages pages a room's history backwards: the service answers newest first, the edges
// are oldest first as Relay orders them, and startCursor continues with older messages.
func (r queryResolver) Messages(ctx context.Context, room string, last *int64, before *string) (*MessageConnection, error) {
	page, err := r.chat.History(ctx, room, plaza.PageRequest{Limit: limit(last), Cursor: deref(before)})
	if err != nil {
		return nil, err
	}
	slices.Reverse(page.Items)
	conn := &MessageConnection{Edges: make([]MessageEdge, len(page.Items)), PageInfo: &PageInfo{HasPreviousPage: page.NextCursor != ""}}
	for i := range page.Items {
		conn.Edges[i] = MessageEdge{Cursor: chat.HistoryCursor(page.Items[i]), Node: &page.Items[i]}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// Node finds a product (cached) or else a user by ID; IDs are unique across both. What
// the caller may not see is null, like what does not exist.
func (r queryResolver) Node(ctx context.Context, id string) (Node, error) {
	p, err := r.product(ctx, id)
	switch plaza.ErrorCodeOf(err) {
	case "":
		return p, nil
	case plaza.ENotFound, plaza.EBadRequest:
	default:
		return nil, err
	}
	u, err := r.users.Get(ctx, id)
	switch plaza.ErrorCodeOf(err) {
	case "":
		return &u, nil
	case plaza.ENotFound, plaza.EUnauthenticated, plaza.EBadRequest:
		return nil, nil
	default:
		return nil, err
	}
}

// limit is a page argument as a plaza.PageRequest limit: absent is 0 (the default); a
// value out of 1..MaxLimit becomes -1 so the service refuses it as it refuses REST's.
func limit(n *int64) int {
	if n == nil {
		return 0
	}
	if *n < 1 || *n > plaza.MaxLimit {
		return -1
	}
	return int(*n)
}

// ret returns &v unless err.
func ret[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}
