-- +goose Up
-- Text columns that are sorted, compared as ranges or used as keyset tiebreaks use the "C"
-- collation: byte order, the same as SQLite's, so both backends page alike, and the
-- subcategory prefix filter is an index range: subcategory = 'laptops' OR subcategory in
-- ['laptops/', 'laptops0'), '0' being the byte after '/'.
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
CREATE INDEX products_search ON products USING GIN (search);

-- +goose Down
DROP TABLE products;
