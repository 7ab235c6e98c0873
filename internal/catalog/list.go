package catalog

import (
	"strings"

	"plaza/internal/plaza"
)

// Sort is a list order. Every order ends with the product ID as the tiebreak, which is what
// makes keyset pages stable: a cursor names a position in a total order.
type Sort string

const (
	SortNewest    Sort = "-created_at" // the default without q
	SortOldest    Sort = "created_at"
	SortPrice     Sort = "price"
	SortPriceDesc Sort = "-price"
	SortName      Sort = "name"
	// SortRelevance is the default when q is given: best match first. It cannot be asked
	// for by name; giving q together with an explicit sort uses that sort instead.
	SortRelevance Sort = "relevance"
)

// ParseSort reads the sort query parameter; "" means the default for the query.
func ParseSort(s string) (Sort, error) {
	switch Sort(s) {
	case "", SortNewest, SortOldest, SortPrice, SortPriceDesc, SortName:
		return Sort(s), nil
	}
	return "", badParam("sort", "unknown sort %q: use created_at, -created_at, price, -price or name", s)
}

// Filter selects and orders a page of products. The zero value is the first page of the
// newest products.
type Filter struct {
	Category    string // exact slug
	Subcategory string // path prefix by whole segments: "laptops" matches "laptops/gaming"
	Q           string // full-text query, searched as plain words
	MinPrice    *int64
	MaxPrice    *int64
	InStock     *bool // true: stock > 0; false: stock = 0
	Sort        Sort
	Limit       int // 1..100, 0 means the default 20
	Cursor      string
}

// Page limits shared by every list (docs/contracts.md, "Shapes": lists).
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Page is one page of a list; NextCursor is empty on the last page.
type Page struct {
	Items      []Product
	NextCursor string
}

// Normalize checks f and fills its defaults. Problems are bad_request errors naming the
// query parameter, since they are about how the list was asked for.
func (f Filter) Normalize() (Filter, error) {
	if f.Category != "" {
		if msg := checkSlug(f.Category); msg != "" {
			return f, badParam("category", "category %s", msg)
		}
	}
	f.Subcategory = strings.TrimSuffix(f.Subcategory, "/")
	if msg := checkPath(f.Subcategory); msg != "" {
		return f, badParam("subcategory", "subcategory %s", msg)
	}
	if f.MinPrice != nil && *f.MinPrice < 0 {
		return f, badParam("min_price", "min_price must not be negative")
	}
	if f.MaxPrice != nil && *f.MaxPrice < 0 {
		return f, badParam("max_price", "max_price must not be negative")
	}
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		return f, badParam("min_price", "min_price must not exceed max_price")
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit < 1 || f.Limit > MaxLimit:
		return f, badParam("limit", "limit must be a whole number from 1 to 100")
	}
	if _, err := ParseSort(string(f.Sort)); err != nil {
		return f, err
	}
	f.Q = strings.TrimSpace(f.Q)
	if f.Sort == "" {
		f.Sort = SortNewest
		if f.Q != "" {
			f.Sort = SortRelevance
		}
	}
	return f, nil
}

func badParam(field, format string, args ...any) *plaza.Error {
	e := plaza.Errorf(plaza.EBadRequest, format, args...)
	e.Fields = []plaza.FieldError{{Field: field, Message: e.Message}}
	return e
}
