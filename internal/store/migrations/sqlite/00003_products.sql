-- +goose Up
-- seq is the rowid alias the full-text index refers to: an implicit rowid may change on
-- VACUUM, an INTEGER PRIMARY KEY never does. id is the public identifier.
-- subcategory is a path of slugs ('laptops/gaming', '' for none); with BINARY collation the
-- prefix filter is an index range: subcategory in ['laptops', 'laptops0'), '0' being the
-- byte after '/', less the 'laptops-…' siblings that range also holds.
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

-- One index per sort, with id as the keyset tiebreak, for lists over the whole catalog.
-- (category, subcategory) serves the category tree's counts and filters under a search;
-- subcategory the subcategory filter without a category.
CREATE INDEX products_created_at ON products (created_at, id);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_category_subcategory ON products (category, subcategory);
CREATE INDEX products_subcategory ON products (subcategory);

-- A product under electronics/audio/headphones has a row here for each of 'electronics',
-- 'electronics/audio' and 'electronics/audio/headphones', with its sort keys copied. Any
-- category path in any sort is then one index walk that stops after a page, whatever the
-- depth: with the products table alone, a path covering several subcategories has to be
-- read whole and sorted, or walked in sort order past every product of its siblings
-- (electronics by price: all the laptops before the first headphones). The store keeps
-- it in step in the same transaction as every write.
CREATE TABLE product_paths (
    id          TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (id, path)
) WITHOUT ROWID;
CREATE INDEX product_paths_created_at ON product_paths (path, created_at, id);
CREATE INDEX product_paths_price ON product_paths (path, price_cents, id);
CREATE INDEX product_paths_name ON product_paths (path, name, id);

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
DROP TABLE product_paths;
DROP TABLE products;
