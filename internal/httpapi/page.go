package httpapi

import (
	"net/http"
	"strconv"

	"plaza/internal/plaza"
)

// Page limits shared by every list (docs/contracts.md, "Shapes": lists).
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// list is the shape of every list response.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageParams reads limit and cursor from the query; a bad limit is a bad_request naming it.
func pageParams(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > MaxLimit {
			return 0, "", &plaza.Error{Code: plaza.EBadRequest, Message: "limit must be a whole number from 1 to 100",
				Fields: []plaza.FieldError{{Field: "limit", Message: "must be 1..100"}}}
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}
