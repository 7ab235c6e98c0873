-- +goose Up
-- Text columns that are sorted, compared as ranges or used as keyset tiebreaks use the "C"
-- collation: byte order, the same as SQLite's, so both backends page alike, and the
-- subcategory prefix filter is an index range: subcategory in ['laptops', 'laptops0'),
-- '0' being the byte after '/', less the 'laptops-…' siblings that range also holds.
CREATE TABLE products (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency    TEXT   NOT NULL,
    category    TEXT COLLATE "C" NOT NULL,
    subcategory TEXT COLLATE "C" NOT NULL DEFAULT '',
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- Name weighs more than description in ts_rank.
    search      TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', description), 'B')
    ) STORED
);

-- One index per sort, with id as the keyset tiebreak, for lists over the whole catalog.
-- (category, subcategory) serves the category tree's counts and filters under a search;
-- subcategory the subcategory filter without a category.
CREATE INDEX products_created_at ON products (created_at, id);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_category_subcategory ON products (category, subcategory);
CREATE INDEX products_subcategory ON products (subcategory);
CREATE INDEX products_search ON products USING GIN (search);

-- A product under electronics/audio/headphones has a row here for each of 'electronics',
-- 'electronics/audio' and 'electronics/audio/headphones', with its sort keys copied. Any
-- category path in any sort is then one index walk that stops after a page, whatever the
-- depth: with the products table alone, a path covering several subcategories has to be
-- read whole and sorted, or walked in sort order past every product of its siblings
-- (electronics by price: all the laptops before the first headphones). The store keeps
-- it in step in the same transaction as every write.
CREATE TABLE product_paths (
    id          TEXT COLLATE "C" NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    path        TEXT COLLATE "C" NOT NULL,
    price_cents BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (id, path)
);
CREATE INDEX product_paths_created_at ON product_paths (path, created_at, id);
CREATE INDEX product_paths_price ON product_paths (path, price_cents, id);
CREATE INDEX product_paths_name ON product_paths (path, name, id);

-- +goose Down
DROP TABLE product_paths;
DROP TABLE products;
