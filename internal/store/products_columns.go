package store

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"plaza/internal/catalog"
)

// productColumns is the products table as the store reads and writes it, one line a
// column, in the order every SELECT, INSERT and RETURNING lists them. Scanning, inserting,
// updating, returning and list cursors are all derived from it, so a new product field is
// the domain type, a migration per dialect and a line here.
var productColumns = []productColumn{
	column("id", onInsert, func(p *catalog.Product) *string { return &p.ID }),
	column("name", onUpdate, func(p *catalog.Product) *string { return &p.Name }),
	column("description", onUpdate, func(p *catalog.Product) *string { return &p.Description }),
	column("price_cents", onUpdate, func(p *catalog.Product) *int64 { return &p.PriceCents }),
	column("currency", onUpdate, func(p *catalog.Product) *string { return &p.Currency }),
	column("category", onUpdate, func(p *catalog.Product) *string { return &p.Category }),
	column("subcategory", onUpdate, func(p *catalog.Product) *string { return &p.Subcategory }),
	column("stock", onUpdate, func(p *catalog.Product) *int64 { return &p.Stock }),
	// Update matches on the version and bumps it itself; the product's own is not written.
	column("version", onInsert, func(p *catalog.Product) *int64 { return &p.Version }),
	column("created_at", onInsert, func(p *catalog.Product) *time.Time { return &p.CreatedAt }),
	column("updated_at", onUpdate, func(p *catalog.Product) *time.Time { return &p.UpdatedAt }),
}

// written says which writes store a column from the product they are given.
type written int

const (
	onInsert written = iota // Insert only: fixed once the product exists, or kept by the store
	onUpdate                // Insert and Update
)

// productColumn is one column of products and the Product field it holds.
type productColumn struct {
	name    string
	written written
	// dest is the Scan destination for the field of p.
	dest func(p *catalog.Product) any
	// value is the field of p as it is: a query argument once through toArg, and the JSON
	// a list cursor carries when the column is a sort key.
	value func(p *catalog.Product) any
	// decode reads a cursor's key for this column back into a query argument.
	decode func(raw json.RawMessage) (any, error)
	// kind is what the column holds, for productJSONByID.
	kind columnKind
}

// columnKind is the type of a product column's field.
type columnKind int

const (
	textColumn columnKind = iota // a string
	intColumn                    // an int64
	timeColumn                   // a time.Time, stored in Time's layout
)

// column describes the column name holding the field that field points at. Times are
// read through ScanTime and written through Time, like every time column.
func column[T any](name string, w written, field func(*catalog.Product) *T) productColumn {
	var kind columnKind
	switch any((*T)(nil)).(type) {
	case *string:
		kind = textColumn
	case *int64:
		kind = intColumn
	case *time.Time:
		kind = timeColumn
	default:
		panic("store: no column kind for the field of product column " + name)
	}
	return productColumn{
		name:    name,
		written: w,
		dest: func(p *catalog.Product) any {
			if t, ok := any(field(p)).(*time.Time); ok {
				return ScanTime(t)
			}
			return field(p)
		},
		value:  func(p *catalog.Product) any { return *field(p) },
		decode: decodeKey[T],
		kind:   kind,
	}
}

// arg is the field of p as a query argument.
func (c productColumn) arg(p *catalog.Product) any { return toArg(c.value(p)) }

// toArg turns a field's value into a query argument: times through Time, the rest as is.
func toArg(v any) any {
	if t, ok := v.(time.Time); ok {
		return Time(t)
	}
	return v
}

// decodeKey reads a cursor's key as a T, the type of the field it was taken from, so a
// key of the wrong type is refused rather than compared.
func decodeKey[T any](raw json.RawMessage) (any, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return toArg(v), nil
}

// columnNamed returns the column called name. The sort keys are built from names at
// start-up, so a misspelt one stops the program before it serves anything.
func columnNamed(name string) productColumn {
	for _, c := range productColumns {
		if c.name == name {
			return c
		}
	}
	panic("store: no product column " + name)
}

// The statements derived from productColumns.
var (
	productSelect = columnList("p.", productColumns)
	productByID   = `SELECT ` + productSelect + ` FROM products p WHERE p.id = $1`
	// productJSONByID is productByID with the row as its JSON, built by SQLite, and the
	// version for the entity tag. The keys are the column names, which are the json names
	// of catalog.Product's fields in the same order (TestProductsByIDJSON holds the
	// two together). Building the document in the query costs less than reading eleven
	// columns through the driver, scanning and encoding them: 34 → 29 µs a read on a
	// seeded database of 100,000 products, most of it the driver's per-column calls.
	// Text is cast to TEXT, so a BLOB (which json_object refuses) reads as the string ByID
	// scans from it; times come out as stored and integers as they are, and
	// asEncodingJSON checks and rewrites them.
	productJSONByID = func() string {
		pairs := make([]string, len(productColumns))
		for i, c := range productColumns {
			v := c.name
			if c.kind == textColumn {
				v = `CAST(` + c.name + ` AS TEXT)`
			}
			pairs[i] = `'` + c.name + `', ` + v
		}
		return `SELECT json_object(` + strings.Join(pairs, ", ") + `), version FROM products WHERE id = $1`
	}()
	// productJSONTimes and productJSONInts are the keys, colon included, of the time and
	// integer fields in productJSONByID's document.
	productJSONTimes = jsonKeys(timeColumn)
	productJSONInts  = jsonKeys(intColumn)
	productInsert    = `INSERT INTO products (` + columnList("", productColumns) + `) VALUES `
	productUpdate    = func() string {
		var set []string
		for _, c := range productColumns {
			if c.written == onUpdate {
				set = append(set, c.name+" = $"+strconv.Itoa(len(set)+1))
			}
		}
		n := len(set)
		return `UPDATE products SET ` + strings.Join(set, ", ") + `, version = version + 1` +
			` WHERE id = $` + strconv.Itoa(n+1) + ` AND version = $` + strconv.Itoa(n+2) +
			` RETURNING ` + columnList("", productColumns)
	}()
)

// jsonKeys returns the JSON keys, colon included, of the product columns of a kind.
func jsonKeys(kind columnKind) [][]byte {
	var keys [][]byte
	for _, c := range productColumns {
		if c.kind == kind {
			keys = append(keys, []byte(`"`+c.name+`":`))
		}
	}
	return keys
}

// productRow is p's values for productInsert.
func productRow(p *catalog.Product) []any {
	row := make([]any, len(productColumns))
	for i, c := range productColumns {
		row[i] = c.arg(p)
	}
	return row
}

// updateArgs are productUpdate's arguments: the fields Update writes, the ID, and the
// version the stored product must still have.
func updateArgs(p *catalog.Product, version int64) []any {
	var args []any
	for _, c := range productColumns {
		if c.written == onUpdate {
			args = append(args, c.arg(p))
		}
	}
	return append(args, p.ID, version)
}

// scanProduct reads productColumns into p, then any extra destinations.
func scanProduct(row interface{ Scan(...any) error }, p *catalog.Product, extra ...any) error {
	dest := make([]any, 0, len(productColumns)+len(extra))
	for _, c := range productColumns {
		dest = append(dest, c.dest(p))
	}
	return row.Scan(append(dest, extra...)...)
}

// pathColumns are the columns product_paths copies from products: the sort keys, so a
// page under a category path is a walk of that path's rows alone (see migration 00003).
// A new sort adds its column to product_paths and one of its indexes.
var pathColumns = func() []productColumn {
	var cols []productColumn
	for _, c := range productColumns {
		for _, k := range sortKeys {
			if k.col == c.name {
				cols = append(cols, c)
				break
			}
		}
	}
	return cols
}()

var pathInsert = `INSERT INTO product_paths (id, path, ` + columnList("", pathColumns) + `) VALUES `

// pathRows are p's product_paths rows: one per ancestor path, the category included.
func pathRows(p *catalog.Product) [][]any {
	row := func(path string) []any {
		r := []any{p.ID, path}
		for _, c := range pathColumns {
			r = append(r, c.arg(p))
		}
		return r
	}
	path := p.Category
	rows := [][]any{row(path)}
	if p.Subcategory != "" {
		for seg := range strings.SplitSeq(p.Subcategory, "/") {
			path += "/" + seg
			rows = append(rows, row(path))
		}
	}
	return rows
}

// pathCount is how many rows pathRows returns for p.
func pathCount(p *catalog.Product) int {
	if p.Subcategory == "" {
		return 1
	}
	return 2 + strings.Count(p.Subcategory, "/")
}

func columnList(prefix string, cols []productColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = prefix + c.name
	}
	return strings.Join(names, ", ")
}
