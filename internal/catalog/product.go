// Package catalog is the product catalog service: products under category paths, search
// and keyset pages, the category tree, and the rules for who may change them. Reads are
// open to everyone and cached; writes need an admin, bump the product's version, invalidate
// the cache on every instance and publish product.created / updated / deleted.
package catalog

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/currency"

	"plaza/internal/plaza"
)

// Limits of a product's fields.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 5000
	MaxSubcategory    = 5 // path depth
	maxSlugLen        = 64
	DefaultCurrency   = "USD"
)

// Product is one thing the shop sells. Version starts at 1 and grows by one on every
// write; conditional writes name it (plaza.Expect).
type Product struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	PriceCents  int64     `json:"price_cents"`
	Currency    string    `json:"currency"`
	Category    string    `json:"category"`
	Subcategory string    `json:"subcategory"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Input is what a client may set on a product: the body of a create or a full replace, and
// the document a merge patch applies to. PriceCents is required; an empty Currency means
// USD.
type Input struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	PriceCents  *int64 `json:"price_cents"`
	Currency    string `json:"currency"`
	Category    string `json:"category"`
	Subcategory string `json:"subcategory"`
	Stock       int64  `json:"stock"`
}

// Input returns the client-settable fields of p, the document a merge patch applies to.
func (p Product) Input() Input {
	price := p.PriceCents
	return Input{
		Name: p.Name, Description: p.Description, PriceCents: &price, Currency: p.Currency,
		Category: p.Category, Subcategory: p.Subcategory, Stock: p.Stock,
	}
}

// normalize fills defaults.
func (in Input) normalize() Input {
	if in.Currency == "" {
		in.Currency = DefaultCurrency
	}
	return in
}

// Validate reports every field that breaks a rule as an EInvalid error.
func (in Input) Validate() error {
	var p plaza.Problems
	switch n := utf8.RuneCountInString(in.Name); {
	case plaza.TextProblem(in.Name, false) != "":
		p.Add("name", "%s", plaza.TextProblem(in.Name, false))
	case strings.TrimSpace(in.Name) == "":
		p.Add("name", "must not be empty")
	case n > MaxNameLen:
		p.Add("name", "must be at most %d characters, got %d", MaxNameLen, n)
	}
	switch n := utf8.RuneCountInString(in.Description); {
	case plaza.TextProblem(in.Description, true) != "":
		p.Add("description", "%s", plaza.TextProblem(in.Description, true))
	case n > MaxDescriptionLen:
		p.Add("description", "must be at most %d characters, got %d", MaxDescriptionLen, n)
	}
	switch {
	case in.PriceCents == nil:
		p.Add("price_cents", "is required")
	case *in.PriceCents < 0:
		p.Add("price_cents", "must not be negative")
	}
	if in.Stock < 0 {
		p.Add("stock", "must not be negative")
	}
	if err := checkCurrency(in.Currency); err != "" {
		p.Add("currency", "%s", err)
	}
	if err := checkSlug(in.Category); err != "" {
		p.Add("category", "%s", err)
	}
	if err := checkPath(in.Subcategory); err != "" {
		p.Add("subcategory", "%s", err)
	}
	return p.Err()
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// checkSlug returns what is wrong with s as a slug, or "".
func checkSlug(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxSlugLen:
		return "must be at most " + strconv.Itoa(maxSlugLen) + " characters"
	case !slugRE.MatchString(s):
		return "must be a slug: lowercase letters and digits, words joined by single hyphens"
	}
	return ""
}

// checkPath returns what is wrong with s as a subcategory path (empty or slugs joined by
// "/", at most MaxSubcategory deep), or "".
func checkPath(s string) string {
	if s == "" {
		return ""
	}
	segs := strings.Split(s, "/")
	if len(segs) > MaxSubcategory {
		return "must be at most " + strconv.Itoa(MaxSubcategory) + " levels deep, got " + strconv.Itoa(len(segs))
	}
	for _, seg := range segs {
		if msg := checkSlug(seg); msg != "" {
			return "must be slugs joined by \"/\": segment " + strconv.Quote(seg) + " " + msg
		}
	}
	return ""
}

// checkCurrency accepts the ISO 4217 codes golang.org/x/text knows, in upper case.
func checkCurrency(code string) string {
	if len(code) != 3 || strings.ToUpper(code) != code {
		return "must be an ISO 4217 code of three uppercase letters, like USD"
	}
	if _, err := currency.ParseISO(code); err != nil {
		return "is not a known ISO 4217 currency code"
	}
	return ""
}
