-- +goose Up
-- seq is the rowid alias the full-text index refers to: an implicit rowid may change on
-- VACUUM, an INTEGER PRIMARY KEY never does. id is the public identifier.
-- subcategory is a path of slugs ('laptops/gaming', '' for none); with BINARY collation the
-- prefix filter is an index range: subcategory = 'laptops' OR subcategory in
-- ['laptops/', 'laptops0'), '0' being the byte after '/'.
CREATE TABLE products (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    currency    TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    subcategory TEXT    NOT NULL DEFAULT '',
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    version     INTEGER NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- One index per sort (with id as the keyset tiebreak), and the same per category, which
-- is the filter the catalog routes use most; subcategory and price ranges ride on these.
CREATE INDEX products_created_at ON products (created_at, id);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_category_created_at ON products (category, created_at, id);
CREATE INDEX products_category_price ON products (category, price_cents, id);
CREATE INDEX products_category_name ON products (category, name, id);
CREATE INDEX products_category_subcategory ON products (category, subcategory);
CREATE INDEX products_subcategory ON products (subcategory);

-- Full-text index over name and description, kept in step by triggers (external content:
-- the text is stored once, in products). porter stems English like PostgreSQL's 'english'.
CREATE VIRTUAL TABLE products_fts USING fts5(
    name, description,
    content = 'products', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- +goose StatementBegin
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, name, description) VALUES (new.seq, new.name, new.description);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description)
    VALUES ('delete', old.seq, old.name, old.description);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER products_fts_update AFTER UPDATE OF name, description ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description)
    VALUES ('delete', old.seq, old.name, old.description);
    INSERT INTO products_fts (rowid, name, description) VALUES (new.seq, new.name, new.description);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER products_fts_update;
DROP TRIGGER products_fts_delete;
DROP TRIGGER products_fts_insert;
DROP TABLE products_fts;
DROP TABLE products;
