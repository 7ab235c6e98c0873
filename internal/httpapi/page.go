package httpapi

import (
	"net/http"
	"strconv"

	"plaza/internal/plaza"
)

// list is the shape of every list response.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// listOf is the response for a page.
func listOf[T any](p plaza.Page[T]) list[T] { return list[T]{Items: p.Items, NextCursor: p.NextCursor} }

// pageParams reads limit and cursor from the query. Only the syntax is checked here (a
// limit is a positive whole number: an explicit 0 is a mistake, not a request for the
// default); the bounds and the default are the services' (plaza.PageRequest).
func pageParams(r *http.Request) (plaza.PageRequest, error) {
	q := r.URL.Query()
	req := plaza.PageRequest{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return req, plaza.BadParam("limit", "limit must be a whole number from 1 to 100")
		}
		req.Limit = n
	}
	return req, nil
}
