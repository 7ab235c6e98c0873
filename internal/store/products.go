package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// Products is the product table; it implements catalog.Store.
type Products struct{ db *DB }

// Products returns the product table of db.
func (db *DB) Products() Products { return Products{db: db} }

var _ catalog.Store = Products{}

const productColumns = `p.id, p.name, p.description, p.price_cents, p.currency, p.category, p.subcategory,
	p.stock, p.version, p.created_at, p.updated_at`

// scanProduct reads productColumns, then any extra destinations.
func scanProduct(row interface{ Scan(...any) error }, p *catalog.Product, extra ...any) error {
	dest := append([]any{&p.ID, &p.Name, &p.Description, &p.PriceCents, &p.Currency, &p.Category,
		&p.Subcategory, &p.Stock, &p.Version, ScanTime(&p.CreatedAt), ScanTime(&p.UpdatedAt)}, extra...)
	return row.Scan(dest...)
}

// ByID returns the product or ENotFound.
func (s Products) ByID(ctx context.Context, id string) (catalog.Product, error) {
	var p catalog.Product
	err := scanProduct(s.db.readRow(ctx, `SELECT `+productColumns+` FROM products p WHERE p.id = $1`, id), &p)
	return p, MapError(err)
}

// insertParams bounds the parameters of one multi-row INSERT, well below both backends'
// limits (32766 on SQLite, 65535 on PostgreSQL).
const insertParams = 1000

// Insert adds products in one transaction.
func (s Products) Insert(ctx context.Context, ps ...catalog.Product) error {
	return s.db.Tx(ctx, func(q Querier) error { return insertProducts(ctx, q, s.db.dialect, ps) })
}

func insertProducts(ctx context.Context, q Querier, d Dialect, ps []catalog.Product) error {
	rows := make([][]any, len(ps))
	var paths [][]any
	for i, p := range ps {
		rows[i] = []any{p.ID, p.Name, p.Description, p.PriceCents, p.Currency, p.Category,
			p.Subcategory, p.Stock, p.Version, Time(p.CreatedAt), Time(p.UpdatedAt)}
		paths = append(paths, pathRows(p)...)
	}
	err := insertRows(ctx, q, d, `INSERT INTO products (id, name, description, price_cents, currency, category,
		subcategory, stock, version, created_at, updated_at) VALUES `, rows)
	if err != nil {
		return err
	}
	return insertRows(ctx, q, d, `INSERT INTO product_paths (id, path, price_cents, created_at, name) VALUES `, paths)
}

// pathRows are p's product_paths rows: one per ancestor path, the category included.
func pathRows(p catalog.Product) [][]any {
	path := p.Category
	rows := [][]any{{p.ID, path, p.PriceCents, Time(p.CreatedAt), p.Name}}
	if p.Subcategory != "" {
		for seg := range strings.SplitSeq(p.Subcategory, "/") {
			path += "/" + seg
			rows = append(rows, []any{p.ID, path, p.PriceCents, Time(p.CreatedAt), p.Name})
		}
	}
	return rows
}

// insertRows runs insert (ending in VALUES) with as many rows per statement as
// insertParams allows. On SQLite the placeholders are anonymous: it looks up every $N by
// name in a list, which for a thousand of them costs more than the insert itself.
func insertRows(ctx context.Context, q Querier, d Dialect, insert string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, insertParams/len(rows[0]))
	for len(rows) > 0 {
		chunk := rows[:min(per, len(rows))]
		rows = rows[len(chunk):]
		var b strings.Builder
		b.WriteString(insert)
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		for i, row := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j, v := range row {
				if j > 0 {
					b.WriteByte(',')
				}
				args = append(args, v)
				if d == SQLite {
					b.WriteByte('?')
				} else {
					b.WriteByte('$')
					b.WriteString(strconv.Itoa(len(args)))
				}
			}
			b.WriteByte(')')
		}
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// demoSeededKey marks, in meta, that demo data was offered to this database.
const demoSeededKey = "catalog.demo_seeded"

// InsertDemo inserts ps unless the demo marker is set or products exist, and sets the
// marker. The marker's insert takes the key's lock, so of instances starting together on
// one PostgreSQL database only the first seeds.
func (s Products) InsertDemo(ctx context.Context, ps []catalog.Product) (bool, error) {
	inserted := false
	err := s.db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO NOTHING`, demoSeededKey, strconv.Itoa(len(ps)), Time(time.Now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		var exists bool
		if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM products)`).Scan(&exists); err != nil || exists {
			return err
		}
		inserted = true
		return insertProducts(ctx, q, s.db.dialect, ps)
	})
	return inserted, err
}

// Update writes p's client fields if the stored version is still version.
func (s Products) Update(ctx context.Context, p catalog.Product, version int64) (catalog.Product, error) {
	var out catalog.Product
	err := s.db.Tx(ctx, func(q Querier) error {
		err := scanProduct(q.QueryRowContext(ctx, `
			UPDATE products SET name = $1, description = $2, price_cents = $3, currency = $4, category = $5,
				subcategory = $6, stock = $7, updated_at = $8, version = version + 1
			WHERE id = $9 AND version = $10
			RETURNING `+strings.ReplaceAll(productColumns, "p.", ""),
			p.Name, p.Description, p.PriceCents, p.Currency, p.Category, p.Subcategory, p.Stock,
			Time(p.UpdatedAt), p.ID, version), &out)
		if errors.Is(err, sql.ErrNoRows) {
			return missedWrite(ctx, q, p.ID)
		}
		if err != nil {
			return err
		}
		// Path or sort keys may have changed: rewrite the product's path rows.
		if _, err := q.ExecContext(ctx, `DELETE FROM product_paths WHERE id = $1`, out.ID); err != nil {
			return err
		}
		return insertRows(ctx, q, s.db.dialect, `INSERT INTO product_paths (id, path, price_cents, created_at, name) VALUES `, pathRows(out))
	})
	return out, err
}

// Delete removes the product (and, by cascade, its path rows) if the stored version is
// still version.
func (s Products) Delete(ctx context.Context, id string, version int64) error {
	return s.db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM products WHERE id = $1 AND version = $2`, id, version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		return missedWrite(ctx, q, id)
	})
}

// missedWrite explains a conditional write that matched no row: the product is gone, or
// its version moved on.
func missedWrite(ctx context.Context, q Querier, id string) error {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return plaza.Errorf(plaza.ENotFound, "no product with this ID")
	}
	// In domain terms: how a client names the version it expected is each transport's business.
	return plaza.Errorf(plaza.EPreconditionFailed, "the stored version has changed; read the product again")
}

// PathCounts counts products per (category, subcategory).
func (s Products) PathCounts(ctx context.Context) ([]catalog.PathCount, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT category, subcategory, COUNT(*) FROM products GROUP BY category, subcategory`)
	if err != nil {
		return nil, MapError(err)
	}
	defer rows.Close()
	var out []catalog.PathCount
	for rows.Next() {
		var pc catalog.PathCount
		if err := rows.Scan(&pc.Category, &pc.Subcategory, &pc.Count); err != nil {
			return nil, MapError(err)
		}
		out = append(out, pc)
	}
	return out, MapError(rows.Err())
}

// Count counts every product.
func (s Products) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM products`).Scan(&n)
	return n, MapError(err)
}

// Analyze refreshes the planner's statistics after a bulk load. PostgreSQL's autovacuum
// would do it within a minute or so; until then its plans for a freshly loaded table are
// guesses (a narrow price range under another sort: 75 ms instead of 0.2 ms over 100k
// products). On SQLite it does nothing: its plan choices are steered by sqliteHints, and
// statistics would only change what that counting compensates for.
func (s Products) Analyze(ctx context.Context) error {
	if s.db.dialect != Postgres {
		return nil
	}
	_, err := s.db.writer.ExecContext(ctx, `ANALYZE products, product_paths`)
	return MapError(err)
}

// sortKeys maps each sort to its column and direction. The product ID follows in the same
// direction, so one index (column, id) serves both the order and the keyset condition.
// The columns exist in products and product_paths alike (score only in the relevance
// query's derived table).
var sortKeys = map[catalog.Sort]struct {
	col  string
	desc bool
}{
	catalog.SortNewest:    {"created_at", true},
	catalog.SortOldest:    {"created_at", false},
	catalog.SortPrice:     {"price_cents", false},
	catalog.SortPriceDesc: {"price_cents", true},
	catalog.SortName:      {"name", false},
	catalog.SortRelevance: {"score", true},
}

// sqliteSortedRange is the most matches of a range filter that SQLite reads and sorts;
// above it, it walks the sort's index instead (see sqliteHints).
const sqliteSortedRange = 2000

// cursor is the position after the last item of a page: its sort, sort key and ID.
type cursor struct {
	Sort catalog.Sort    `json:"s"`
	Key  json.RawMessage `json:"k"`
	ID   string          `json:"i"`
}

// List returns a page of a normalized filter. Pages are keyset pages: the next one starts
// strictly after the last item's (sort key, id), so rows inserted or deleted meanwhile
// never repeat or skip a row that was there throughout.
func (s Products) List(ctx context.Context, f catalog.Filter) (catalog.Page, error) {
	key, ok := sortKeys[f.Sort]
	if !ok {
		return catalog.Page{}, plaza.Errorf(plaza.EBadRequest, "unknown sort %q", f.Sort)
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}

	// Under a category, sorted pages walk product_paths (see migration 00003): the sort
	// keys are read from t, which is pp there and the products table p elsewhere.
	// Relevance pages are driven by the full-text index and filter on products.
	t, joinPaths := "p", ""
	usePaths := f.Category != "" && f.Sort != catalog.SortRelevance
	if usePaths {
		t, joinPaths = "pp", " JOIN product_paths pp ON pp.id = p.id"
	}
	from := "products p" + joinPaths

	path := f.Category
	if f.Subcategory != "" {
		path += "/" + f.Subcategory
	}
	priceCol, subCol := t+".price_cents", "p.subcategory"
	if s.db.dialect == SQLite && f.Q == "" {
		var err error
		if priceCol, subCol, err = s.sqliteHints(ctx, f, usePaths, path, priceCol, subCol); err != nil {
			return catalog.Page{}, err
		}
	}

	var where []string
	switch {
	case usePaths:
		where = append(where, "pp.path = "+arg(path))
	case f.Category != "":
		where = append(where, "p.category = "+arg(f.Category))
	}
	if f.Subcategory != "" && !usePaths {
		// Whole segments: one index range ['laptops', 'laptops0') ('0' follows '/'), less
		// the siblings 'laptops-…' it also holds.
		sub := arg(f.Subcategory)
		where = append(where, subCol+" >= "+sub+" AND "+subCol+" < "+arg(f.Subcategory+"0")+
			" AND ("+subCol+" = "+sub+" OR "+subCol+" >= "+arg(f.Subcategory+"/")+")")
	}
	if f.MinPrice != nil {
		where = append(where, priceCol+" >= "+arg(*f.MinPrice))
	}
	if f.MaxPrice != nil {
		where = append(where, priceCol+" <= "+arg(*f.MaxPrice))
	}
	if f.InStock != nil {
		if *f.InStock {
			where = append(where, "p.stock > 0")
		} else {
			where = append(where, "p.stock = 0")
		}
	}

	score := ""
	if f.Q != "" {
		words := searchWords(f.Q)
		if len(words) == 0 {
			return catalog.Page{Items: []catalog.Product{}}, nil // only punctuation: nothing matches
		}
		if s.db.dialect == SQLite {
			// Each word quoted, so FTS5 operators (AND, NEAR, *, -, ^, parentheses) are text.
			match := arg(`"` + strings.Join(words, `" "`) + `"`)
			from = "products_fts JOIN products p ON p.seq = products_fts.rowid" + joinPaths
			where = append(where, "products_fts MATCH "+match)
			// bm25 is lower for better matches; name weighs ten times the description.
			score = "-bm25(products_fts, 10.0, 1.0)"
		} else {
			query := "plainto_tsquery('english', " + arg(f.Q) + ")"
			where = append(where, "p.search @@ "+query)
			score = "ts_rank(p.search, " + query + ")"
		}
	}

	sel := "SELECT " + productColumns + " FROM " + from
	if f.Sort == catalog.SortRelevance {
		// The score is a column of a derived table so the keyset condition can name it.
		sel = "SELECT " + productColumns + ", p.score FROM (SELECT p.*, " + score + " AS score FROM " + from
		if len(where) > 0 {
			sel += " WHERE " + strings.Join(where, " AND ")
		}
		sel += ") p"
		where = nil
	}
	if f.Cursor != "" {
		k, err := s.keyset(f, t, arg)
		if err != nil {
			return catalog.Page{}, err
		}
		where = append(where, k)
	}
	dir := ""
	if key.desc {
		dir = " DESC"
	}
	query := sel
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + t + "." + key.col + dir + ", " + t + ".id" + dir + " LIMIT " + arg(f.Limit+1)

	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return catalog.Page{}, MapError(err)
	}
	defer rows.Close()
	items := make([]catalog.Product, 0, f.Limit+1)
	scores := make([]float64, 0, f.Limit+1)
	for rows.Next() {
		var p catalog.Product
		var sc float64
		var extra []any
		if f.Sort == catalog.SortRelevance {
			extra = append(extra, &sc)
		}
		if err := scanProduct(rows, &p, extra...); err != nil {
			return catalog.Page{}, MapError(err)
		}
		items = append(items, p)
		scores = append(scores, sc)
	}
	if err := rows.Err(); err != nil {
		return catalog.Page{}, MapError(err)
	}
	page := catalog.Page{Items: items}
	if len(items) > f.Limit {
		page.Items = items[:f.Limit]
		page.NextCursor = nextCursor(f.Sort, page.Items[f.Limit-1], scores[f.Limit-1])
	}
	return page, nil
}

// sqliteHints steers SQLite's planner between a filter's index and the sort's index.
// Without statistics that tell it otherwise, it takes any range (a price range, a
// subcategory prefix) for a narrow one: it reads the whole range and sorts it, 70 ms for
// a broad price range over 100k products, where walking the sort's index and stopping
// after one page takes under a millisecond. For a narrow range that walk would read most
// of the table instead. So each range filter's matches are counted on its own index, at
// most sqliteSortedRange+1 of them (an index-only scan, bounded), and a broad one gets its
// index hidden with a unary +. It returns the column expressions to filter on.
// PostgreSQL's statistics make this choice by themselves.
func (s Products) sqliteHints(ctx context.Context, f catalog.Filter, usePaths bool, path, priceCol, subCol string) (string, string, error) {
	moreThan := func(from string, conds []string, args ...any) (bool, error) {
		var n int
		err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+from+` WHERE `+
			strings.Join(conds, " AND ")+` LIMIT `+strconv.Itoa(sqliteSortedRange+1)+`)`, args...).Scan(&n)
		return n > sqliteSortedRange, MapError(err)
	}
	priceSorted := f.Sort == catalog.SortPrice || f.Sort == catalog.SortPriceDesc
	if (f.MinPrice != nil || f.MaxPrice != nil) && !priceSorted {
		from, conds, args := "products", []string(nil), []any(nil)
		if usePaths {
			from, conds, args = "product_paths", []string{"path = ?"}, []any{path}
		}
		if f.MinPrice != nil {
			conds, args = append(conds, "price_cents >= ?"), append(args, *f.MinPrice)
		}
		if f.MaxPrice != nil {
			conds, args = append(conds, "price_cents <= ?"), append(args, *f.MaxPrice)
		}
		broad, err := moreThan(from, conds, args...)
		if err != nil {
			return "", "", err
		}
		if broad {
			priceCol = "+" + priceCol
		}
	}
	if f.Subcategory != "" && !usePaths {
		broad, err := moreThan("products", []string{"subcategory >= ?", "subcategory < ?"}, f.Subcategory, f.Subcategory+"0")
		if err != nil {
			return "", "", err
		}
		if broad {
			subCol = "+" + subCol
		}
	}
	return priceCol, subCol, nil
}

// keyset returns the condition "after the cursor" in the sort's direction, on the sort
// keys of table alias t.
func (s Products) keyset(f catalog.Filter, t string, arg func(any) string) (string, error) {
	var c cursor
	if err := plaza.DecodeCursor(f.Cursor, &c); err != nil {
		return "", err
	}
	if c.Sort != f.Sort || c.ID == "" {
		return "", badCursor()
	}
	var v any
	switch f.Sort {
	case catalog.SortNewest, catalog.SortOldest:
		var t time.Time
		if json.Unmarshal(c.Key, &t) != nil {
			return "", badCursor()
		}
		v = Time(t)
	case catalog.SortPrice, catalog.SortPriceDesc:
		var n int64
		if json.Unmarshal(c.Key, &n) != nil {
			return "", badCursor()
		}
		v = n
	case catalog.SortName:
		var name string
		if json.Unmarshal(c.Key, &name) != nil {
			return "", badCursor()
		}
		v = name
	case catalog.SortRelevance:
		var sc float64
		if json.Unmarshal(c.Key, &sc) != nil {
			return "", badCursor()
		}
		v = sc
	}
	key := sortKeys[f.Sort]
	op := ">"
	if key.desc {
		op = "<"
	}
	return "(" + t + "." + key.col + ", " + t + ".id) " + op + " (" + arg(v) + ", " + arg(c.ID) + ")", nil
}

func nextCursor(sort catalog.Sort, last catalog.Product, score float64) string {
	var k any
	switch sort {
	case catalog.SortNewest, catalog.SortOldest:
		k = last.CreatedAt
	case catalog.SortPrice, catalog.SortPriceDesc:
		k = last.PriceCents
	case catalog.SortName:
		k = last.Name
	case catalog.SortRelevance:
		k = score
	}
	raw, _ := json.Marshal(k)
	return plaza.EncodeCursor(cursor{Sort: sort, Key: raw, ID: last.ID})
}

func badCursor() error {
	return &plaza.Error{Code: plaza.EBadRequest, Message: "cursor is not a cursor this server issued for this sort",
		Fields: []plaza.FieldError{{Field: "cursor", Message: "does not belong to this list"}}}
}

// searchWords splits q into runs of letters and digits, the way both full-text engines
// tokenize, so nothing in q is ever read as query syntax.
func searchWords(q string) []string {
	return strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
