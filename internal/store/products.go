package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// Products is the product table; it implements catalog.Store.
type Products struct{ db *DB }

// Products returns the product table of db.
func (db *DB) Products() Products { return Products{db: db} }

var _ catalog.Store = Products{}

// ByID returns the product or ENotFound.
func (s Products) ByID(ctx context.Context, id string) (catalog.Product, error) {
	var p catalog.Product
	err := scanProduct(s.db.readRow(ctx, productByID, id), &p)
	return p, MapError(err)
}

// ByIDJSON returns the product as JSON, byte for byte what encoding/json writes for
// catalog.Product followed by a newline, and its version; ENotFound when there is none.
// SQLite builds the document in the query (productJSONByID); PostgreSQL reads the row
// and encodes it here.
func (s Products) ByIDJSON(ctx context.Context, id string) ([]byte, int64, error) {
	if s.db.dialect == SQLite {
		var body []byte
		var version int64
		if err := s.db.readRow(ctx, productJSONByID, id).Scan(&body, &version); err != nil {
			return nil, 0, MapError(err)
		}
		if body, ok := asEncodingJSON(body); ok {
			return append(body, '\n'), version, nil
		}
	}
	p, err := s.ByID(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, 0, err
	}
	return append(body, '\n'), p.Version, nil
}

// encodingJSONScalars checks the integers and rewrites the times of doc, productJSONByID's document, from Time's
// layout to what encoding/json writes: the fraction without its trailing zeros, and
// without the dot when nothing is left. ok is false when a time is not in Time's layout
// or an integer column holds something else (a row written some other way), and the
// caller reads the row as ByID does. A key is found by its last occurrence: inside a
// JSON string every quote is escaped, so the bytes `"name":` occur only as the key.
func encodingJSONScalars(doc []byte) (_ []byte, ok bool) {
	for _, key := range productJSONInts {
		i := bytes.LastIndex(doc, key)
		if i < 0 {
			return nil, false
		}
		v := doc[i+len(key):]
		digits := 0
		for digits < len(v) && v[digits] >= '0' && v[digits] <= '9' {
			digits++
		}
		// No sign: the schema refuses negative values, and the store writes none.
		if digits == 0 || digits == len(v) || (v[digits] != ',' && v[digits] != '}') {
			return nil, false
		}
	}
	for _, key := range productJSONTimes {
		i := bytes.LastIndex(doc, key)
		if i < 0 {
			return nil, false
		}
		at := i + len(key) + 1 // past the opening quote
		n := len(timeLayout)
		if len(doc) < at+n+1 || doc[at-1] != '"' || doc[at+n] != '"' || !inTimeLayout(doc[at:at+n]) {
			return nil, false
		}
		// 2006-01-02T15:04:05.000000000Z: the fraction is at [20, 29).
		end := at + 29
		for end > at+20 && doc[end-1] == '0' {
			end--
		}
		if end == at+20 {
			end-- // the dot
		}
		doc[end] = 'Z'
		doc = append(doc[:end+1], doc[at+n:]...)
	}
	return doc, true
}

// inTimeLayout reports whether v has timeLayout's shape: a digit where it has one, its
// other bytes as they are.
func inTimeLayout(v []byte) bool {
	for i := range len(timeLayout) {
		l := timeLayout[i]
		if l >= '0' && l <= '9' {
			if v[i] < '0' || v[i] > '9' {
				return false
			}
		} else if v[i] != l {
			return false
		}
	}
	return true
}

// asEncodingJSON returns doc, productJSONByID's document, as encoding/json writes it:
// times rewritten by encodingJSONScalars, then strings. The two escape strings alike but
// for two cases. encoding/json also escapes
// <, >, & and the line and paragraph separators U+2028 and U+2029, done here the way it
// does them. Invalid UTF-8 encoding/json replaces, which SQLite copies as it is; no text
// written through Plaza's transports holds any (JSON and protobuf decoding both refuse or
// replace it), and for a row written some other way ok is false and the caller encodes
// the row itself.
func asEncodingJSON(doc []byte) (_ []byte, ok bool) {
	if !utf8.Valid(doc) {
		return nil, false
	}
	if doc, ok = encodingJSONScalars(doc); !ok {
		return nil, false
	}
	// One vectorized scan a byte is cheaper than one loop testing four; 0xE2 begins the
	// UTF-8 of U+2028 and U+2029 (and of other characters, which HTMLEscape leaves).
	for _, c := range []byte("<>&\xe2") {
		if bytes.IndexByte(doc, c) >= 0 {
			var buf bytes.Buffer
			buf.Grow(len(doc) + 32)
			json.HTMLEscape(&buf, doc)
			return buf.Bytes(), true
		}
	}
	return doc, true
}

// insertParams bounds the parameters of one multi-row INSERT, well below both backends'
// limits (32766 on SQLite, 65535 on PostgreSQL).
const insertParams = 1000

// Insert adds products in one transaction.
func (s Products) Insert(ctx context.Context, ps ...catalog.Product) error {
	return s.db.Tx(ctx, func(q Querier) error { return insertProducts(ctx, q, s.db.dialect, ps) })
}

// Create adds p and stores events in the outbox in the same transaction.
func (s Products) Create(ctx context.Context, p catalog.Product, events ...plaza.Outgoing) error {
	return s.db.groupInsert(ctx, []catalog.Product{p}, events)
}

func insertProducts(ctx context.Context, q Querier, d Dialect, ps []catalog.Product) error {
	rows := make([][]any, len(ps))
	var paths [][]any
	for i := range ps {
		rows[i] = productRow(&ps[i])
		paths = append(paths, pathRows(&ps[i])...)
	}
	if err := insertRows(ctx, q, d, productInsert, rows); err != nil {
		return err
	}
	return insertRows(ctx, q, d, pathInsert, paths)
}

// insertRows runs insert (ending in VALUES) with as many rows per statement as
// insertParams allows.
func insertRows(ctx context.Context, q Querier, d Dialect, insert string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := rowsPerInsert(len(rows[0]))
	for len(rows) > 0 {
		chunk := rows[:min(per, len(rows))]
		rows = rows[len(chunk):]
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		for _, row := range chunk {
			args = append(args, row...)
		}
		if _, err := q.ExecContext(ctx, insertSQL(insert, d, len(chunk), len(chunk[0])), args...); err != nil {
			return err
		}
	}
	return nil
}

// rowsPerInsert is how many rows of cols values insertRows puts in one statement.
func rowsPerInsert(cols int) int { return max(1, insertParams/cols) }

// insertSQL is insert (ending in VALUES) with placeholders for rows rows of cols values.
// On SQLite the placeholders are anonymous: it looks up every $N by name in a list, which
// for a thousand of them costs more than the insert itself.
func insertSQL(insert string, d Dialect, rows, cols int) string {
	var b strings.Builder
	b.Grow(len(insert) + rows*cols*4)
	b.WriteString(insert)
	n := 0
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			n++
			if d == SQLite {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			}
		}
		b.WriteByte(')')
	}
	return b.String()
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

// Update stores p's editable fields (the onUpdate columns of productColumns) if the stored
// version is still version, bumps the version and returns the stored product; events go
// to the outbox in the same transaction.
func (s Products) Update(ctx context.Context, p catalog.Product, version int64, events ...plaza.Outgoing) (catalog.Product, error) {
	var out catalog.Product
	err := s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		err := scanProduct(q.QueryRowContext(ctx, productUpdate, updateArgs(&p, version)...), &out)
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
		return insertRows(ctx, q, s.db.dialect, pathInsert, pathRows(&out))
	})
	return out, err
}

// Delete removes the product (and, by cascade, its path rows) if the stored version is
// still version; events go to the outbox in the same transaction.
func (s Products) Delete(ctx context.Context, id string, version int64, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
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
