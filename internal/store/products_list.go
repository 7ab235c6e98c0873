package store

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// sortKey is the column a sort orders by, and how a cursor carries it.
type sortKey struct {
	col  string
	desc bool
	// value is an item's key as its page's cursor carries it; decode reads it back.
	value  func(p *catalog.Product, score float64) any
	decode func(raw json.RawMessage) (any, error)
}

// sortBy is the sort on a column of productColumns.
func sortBy(col string, desc bool) sortKey {
	c := columnNamed(col)
	return sortKey{col: col, desc: desc, value: func(p *catalog.Product, _ float64) any { return c.value(p) }, decode: c.decode}
}

// sortKeys maps each sort to its key. The product ID follows in the same direction, so
// one index (column, id) serves both the order and the keyset condition. The columns
// exist in products and product_paths alike (pathColumns), the relevance score only in
// the search's derived table.
var sortKeys = map[catalog.Sort]sortKey{
	catalog.SortNewest:    sortBy("created_at", true),
	catalog.SortOldest:    sortBy("created_at", false),
	catalog.SortPrice:     sortBy("price_cents", false),
	catalog.SortPriceDesc: sortBy("price_cents", true),
	catalog.SortName:      sortBy("name", false),
	catalog.SortRelevance: {col: "score", desc: true,
		value: func(_ *catalog.Product, score float64) any { return score }, decode: decodeKey[float64]},
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
	switch {
	case !ok:
		return catalog.Page{}, plaza.Errorf(plaza.EBadRequest, "unknown sort %q", f.Sort)
	case f.Limit < 1:
		// Normalize fills the default; a page of nothing has no last item to continue from.
		return catalog.Page{}, plaza.Errorf(plaza.EBadRequest, "a page holds at least one product")
	case f.Sort == catalog.SortRelevance && f.Q == "":
		return catalog.Page{}, plaza.Errorf(plaza.EBadRequest, "relevance orders the matches of a search; there is none")
	}
	q := newPageQuery(f)
	if f.Q != "" {
		words := searchWords(f.Q)
		if len(words) == 0 {
			return catalog.Page{Items: []catalog.Product{}}, nil // only punctuation: nothing matches
		}
		window := s.db.rankedMatches
		if window == 0 {
			window = catalog.RankedMatches
		}
		q.search(s.db.dialect, f, words, window)
		if s.db.dialect == Postgres {
			// Planned for its words each time, not once for any: a prepared statement's
			// generic plan cannot tell a word 40% of products hold from a rare one, and took
			// the GIN index for both, reading 40,000 rows to keep the newest 1,000 (110-290 ms).
			// An unnamed statement is planned with its parameters.
			q.mode = append(q.mode, pgx.QueryExecModeCacheDescribe)
		}
	} else if s.db.dialect == SQLite {
		if err := s.sqliteHints(ctx, q, f); err != nil {
			return catalog.Page{}, err
		}
	}
	q.filter(f)
	if f.Cursor != "" {
		if err := q.startAfter(f, key); err != nil {
			return catalog.Page{}, err
		}
	}

	rows, err := s.db.Read().QueryContext(ctx, q.sql(key, f.Limit+1), append(q.mode, q.args...)...)
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
		if q.score != "" {
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
		raw, _ := json.Marshal(key.value(&page.Items[f.Limit-1], scores[f.Limit-1]))
		page.NextCursor = plaza.EncodeCursor(cursor{Sort: f.Sort, Key: raw, ID: page.Items[f.Limit-1].ID})
	}
	return page, nil
}

// params are the arguments of a query being built; add names the next one $N, so parts
// of a query can be built in any order and joined in another.
type params []any

func (ps *params) add(v any) string {
	*ps = append(*ps, v)
	return "$" + strconv.Itoa(len(*ps))
}

// pageQuery is one list page's query, built in parts: the table it walks (newPageQuery),
// the search, the filter's conditions, the keyset condition, then the order and limit.
type pageQuery struct {
	args params
	// mode holds the driver's options, passed before args.
	mode []any
	// from and join are the FROM clause; keys is the alias whose sort keys order the page:
	// pp when the page walks product_paths, p (products) otherwise.
	from, join, keys string
	// path is the category path a product_paths walk is on, "" when there is none.
	path string
	// price and sub are what the price range and the subcategory prefix compare;
	// sqliteHints may hide their index from the planner.
	price, sub string
	where      []string
	// score ranks a relevance page's matches, "" for other sorts. It is computed for the
	// window only: the newest window matches of the filter, newest by the column newest.
	// rankInWalk says the score is computed by the query that walks the matches (SQLite,
	// where bm25 reads the full-text cursor) rather than over the window that query returns.
	score, newest string
	window        int
	rankInWalk    bool
	// after is the keyset condition, "" on a first page.
	after string
}

// newPageQuery picks the rows a page walks. Under a category, sorted pages walk
// product_paths (see migration 00003) and read their sort keys there. Relevance pages are
// driven by the full-text index and filter on products.
func newPageQuery(f catalog.Filter) *pageQuery {
	q := &pageQuery{from: "products p", keys: "p", sub: "p.subcategory"}
	if f.Category != "" && f.Sort != catalog.SortRelevance {
		q.path = f.Category
		if f.Subcategory != "" {
			q.path += "/" + f.Subcategory
		}
		q.join, q.keys = " JOIN product_paths pp ON pp.id = p.id", "pp"
	}
	q.price = q.keys + ".price_cents"
	return q
}

// search matches words on the dialect's full-text index, and on a relevance page ranks
// the newest window matches by it.
func (q *pageQuery) search(d Dialect, f catalog.Filter, words []string, window int) {
	var score string
	if d == SQLite {
		// Each word quoted, so FTS5 operators (AND, NEAR, *, -, ^, parentheses) are text.
		q.from = "products_fts JOIN products p ON p.seq = products_fts.rowid"
		q.where = append(q.where, "products_fts MATCH "+q.args.add(`"`+strings.Join(words, `" "`)+`"`))
		// bm25 is lower for better matches; name weighs ten times the description.
		score = "-bm25(products_fts, 10.0, 1.0)"
		// FTS5 walks a word's rowids (products.seq) in either order and stops at the LIMIT.
		q.newest, q.rankInWalk = "products_fts.rowid", true
	} else {
		query := "plainto_tsquery('english', " + q.args.add(f.Q) + ")"
		q.where = append(q.where, "p.search @@ "+query)
		score = "ts_rank(p.search, " + query + ")"
		// products_seq walked backwards for a common word, the GIN index for a rare one.
		q.newest = "p.seq"
	}
	if f.Sort == catalog.SortRelevance {
		q.score, q.window = score, window
	}
}

// filter adds the conditions of f's category, subcategory, price range and stock.
func (q *pageQuery) filter(f catalog.Filter) {
	switch {
	case q.path != "":
		q.where = append(q.where, "pp.path = "+q.args.add(q.path))
	case f.Category != "":
		q.where = append(q.where, "p.category = "+q.args.add(f.Category))
	}
	if f.Subcategory != "" && q.path == "" {
		// Whole segments: the range less the siblings 'laptops-…' it also holds.
		q.where = append(q.where, subcategoryRange(q.sub, f.Subcategory, &q.args)+
			" AND ("+q.sub+" = "+q.args.add(f.Subcategory)+" OR "+q.sub+" >= "+q.args.add(f.Subcategory+"/")+")")
	}
	q.where = append(q.where, priceRange(q.price, f, &q.args)...)
	if f.InStock != nil {
		if *f.InStock {
			q.where = append(q.where, "p.stock > 0")
		} else {
			q.where = append(q.where, "p.stock = 0")
		}
	}
}

// subcategoryRange is the one index range holding sub and every path below it:
// ['laptops', 'laptops0'), '0' being the byte after '/'.
func subcategoryRange(col, sub string, ps *params) string {
	return col + " >= " + ps.add(sub) + " AND " + col + " < " + ps.add(sub+"0")
}

// priceRange are the conditions of f's price range on col, none without one.
func priceRange(col string, f catalog.Filter, ps *params) []string {
	var conds []string
	if f.MinPrice != nil {
		conds = append(conds, col+" >= "+ps.add(*f.MinPrice))
	}
	if f.MaxPrice != nil {
		conds = append(conds, col+" <= "+ps.add(*f.MaxPrice))
	}
	return conds
}

// startAfter adds the condition "after the cursor" in the sort's direction. A cursor of
// another sort, or whose key is not of the sort's type, is refused.
func (q *pageQuery) startAfter(f catalog.Filter, key sortKey) error {
	var c cursor
	if err := plaza.DecodeCursor(f.Cursor, &c); err != nil {
		return err
	}
	if c.Sort != f.Sort || !plaza.ValidID(c.ID) {
		return badCursor()
	}
	v, err := key.decode(c.Key)
	if err != nil {
		return badCursor()
	}
	op := ">"
	if key.desc {
		op = "<"
	}
	q.after = "(" + q.keys + "." + key.col + ", " + q.keys + ".id) " + op + " (" + q.args.add(v) + ", " + q.args.add(c.ID) + ")"
	return nil
}

// sql assembles the query, reading at most limit rows in key's order.
func (q *pageQuery) sql(key sortKey, limit int) string {
	from, conds, sel := q.from+q.join, q.where, productSelect
	if q.score != "" {
		from = q.ranked(from, conds)
		sel += ", p.score"
		conds = nil
	}
	if q.after != "" {
		conds = append(slices.Clip(conds), q.after)
	}
	dir := ""
	if key.desc {
		dir = " DESC"
	}
	return "SELECT " + sel + " FROM " + from + where(conds) +
		" ORDER BY " + q.keys + "." + key.col + dir + ", " + q.keys + ".id" + dir + " LIMIT " + q.args.add(limit)
}

// ranked is a relevance page's derived table: the newest q.window matches of the filter,
// each with its score as a column the keyset condition can name. Every page of a search
// ranks the same window, so pages continue within it and the last one ends it.
func (q *pageQuery) ranked(from string, conds []string) string {
	window := from + where(conds) + " ORDER BY " + q.newest + " DESC LIMIT " + q.args.add(q.window)
	if q.rankInWalk {
		// The walk is in index order and stops after the window: no sort, so the score is
		// computed for the rows returned and no others.
		return "(SELECT p.*, " + q.score + " AS score FROM " + window + ") p"
	}
	// Scored above the window: in the query that sorts the matches by seq, PostgreSQL
	// would compute the score for every match before the sort.
	return "(SELECT p.*, " + q.score + " AS score FROM (SELECT p.* FROM " + window + ") p) p"
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// sqliteHints steers SQLite's planner between a filter's index and the sort's index.
// Without statistics that tell it otherwise, it takes any range (a price range, a
// subcategory prefix) for a narrow one: it reads the whole range and sorts it, 70 ms for
// a broad price range over 100k products, where walking the sort's index and stopping
// after one page takes under a millisecond. For a narrow range that walk would read most
// of the table instead. So each range filter's matches are counted on its own index, at
// most sqliteSortedRange+1 of them (an index-only scan, bounded), and a broad one gets its
// index hidden with a unary + in q's price or sub. PostgreSQL's statistics make this
// choice by themselves.
func (s Products) sqliteHints(ctx context.Context, q *pageQuery, f catalog.Filter) error {
	broad := func(from string, conds []string, args params) (bool, error) {
		var n int
		err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+from+where(conds)+
			` LIMIT `+strconv.Itoa(sqliteSortedRange+1)+`)`, args...).Scan(&n)
		return n > sqliteSortedRange, MapError(err)
	}
	priceSorted := f.Sort == catalog.SortPrice || f.Sort == catalog.SortPriceDesc
	if (f.MinPrice != nil || f.MaxPrice != nil) && !priceSorted {
		var args params
		from, conds := "products", []string(nil)
		if q.path != "" {
			from, conds = "product_paths", []string{"path = " + args.add(q.path)}
		}
		conds = append(conds, priceRange("price_cents", f, &args)...)
		wide, err := broad(from, conds, args)
		if err != nil {
			return err
		}
		if wide {
			q.price = "+" + q.price
		}
	}
	if f.Subcategory != "" && q.path == "" {
		var args params
		conds := []string{subcategoryRange("subcategory", f.Subcategory, &args)}
		wide, err := broad("products", conds, args)
		if err != nil {
			return err
		}
		if wide {
			q.sub = "+" + q.sub
		}
	}
	return nil
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
