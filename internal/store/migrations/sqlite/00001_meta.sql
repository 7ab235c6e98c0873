-- +goose Up
-- Times are TEXT in RFC 3339 UTC with fixed-width nanoseconds; see store.Time.
CREATE TABLE meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE meta;
