package catalog

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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

// RankedMatches bounds a relevance sort: it ranks the newest RankedMatches matches of the
// whole filter (search words, category, price range and stock together), newest meaning
// most recently added, and its pages end with them. A search with fewer matches ranks
// them all. Ranking every match of a word that 40% of 100,000 products hold took 250 ms
// and more a page; other sorts still walk every match.
const RankedMatches = 1000

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
	Limit       int // 1..plaza.MaxLimit, 0 means plaza.DefaultLimit
	Cursor      string
}

// Page is one page of products; NextCursor is empty on the last page.
type Page = plaza.Page[Product]

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
	page, err := plaza.PageRequest{Limit: f.Limit, Cursor: f.Cursor}.Normalize()
	if err != nil {
		return f, err
	}
	f.Limit = page.Limit
	if _, err := ParseSort(string(f.Sort)); err != nil {
		return f, err
	}
	q, err := normalizeQuery(f.Q)
	if err != nil {
		return f, err
	}
	f.Q = q
	if f.Sort == "" {
		f.Sort = SortNewest
		if f.Q != "" {
			f.Sort = SortRelevance
		}
	}
	return f, nil
}

func badParam(field, format string, args ...any) *plaza.Error {
	return plaza.BadParam(field, fmt.Sprintf(format, args...))
}

// Bounds of a search query: what one anonymous request may ask the full-text index to do.
// A query is its words (runs of letters and digits; everything else, FTS operators
// included, separates them), each counted once.
const (
	MaxQueryBytes = 256
	MaxQueryTerms = 8
	MaxTermLen    = 40 // characters
)

// normalizeQuery reduces q to its distinct words, in their first order, joined by single
// spaces, and refuses a query over the bounds: a thousand repetitions of one word cost the
// index a thousand lookups, the same word once costs one.
func normalizeQuery(q string) (string, error) {
	if len(q) > MaxQueryBytes {
		return "", badParam("q", "q must be at most %d bytes, got %d", MaxQueryBytes, len(q))
	}
	words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 {
		// Only punctuation: kept as given, it matches nothing.
		return strings.TrimSpace(q), nil
	}
	seen := make(map[string]bool, len(words))
	distinct := words[:0]
	for _, w := range words {
		if n := utf8.RuneCountInString(w); n > MaxTermLen {
			return "", badParam("q", "each word of q must be at most %d characters, got one of %d", MaxTermLen, n)
		}
		if k := strings.ToLower(w); !seen[k] {
			seen[k] = true
			distinct = append(distinct, w)
		}
	}
	if len(distinct) > MaxQueryTerms {
		return "", badParam("q", "q must have at most %d different words, got %d", MaxQueryTerms, len(distinct))
	}
	return strings.Join(distinct, " "), nil
}
