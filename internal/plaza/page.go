package plaza

// Page limits shared by every list, whatever the transport (docs/contracts.md, "Shapes": lists).
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// maxCursorLen bounds what a cursor may cost to decode: every cursor this server issues
	// (a sort key and an ID) is far shorter.
	maxCursorLen = 512
)

// PageRequest is how a client asks for one page of a list: Limit 0 means DefaultLimit,
// Cursor "" the first page. Services normalize it, so every transport gets the same
// defaults and bounds by construction.
type PageRequest struct {
	Limit  int
	Cursor string
}

// Normalize fills the default limit and refuses a limit outside 1..MaxLimit or an
// oversized cursor as bad_request errors naming the parameter.
func (r PageRequest) Normalize() (PageRequest, error) {
	switch {
	case r.Limit == 0:
		r.Limit = DefaultLimit
	case r.Limit < 1 || r.Limit > MaxLimit:
		return r, BadParam("limit", "limit must be a whole number from 1 to 100")
	}
	if len(r.Cursor) > maxCursorLen {
		return r, BadParam("cursor", "cursor is not a cursor this server issued")
	}
	return r, nil
}

// Page is one page of a list; NextCursor is "" on the last page.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// PageOf makes a page from items fetched with limit+1 (the extra item only tells that
// another page exists): it keeps limit items and, when there were more, sets NextCursor
// to the cursor of the last item kept. Items is never nil, so an empty page encodes as [].
func PageOf[T any](items []T, limit int, cursor func(last T) string) Page[T] {
	if items == nil {
		items = []T{}
	}
	if limit < 1 || len(items) <= limit {
		return Page[T]{Items: items}
	}
	items = items[:limit]
	return Page[T]{Items: items, NextCursor: cursor(items[limit-1])}
}

// BadParam is a bad_request about one query parameter or argument, named in Fields.
func BadParam(field, msg string) *Error {
	return &Error{Code: EBadRequest, Message: msg, Fields: []FieldError{{Field: field, Message: msg}}}
}
