-- +goose Up
-- A user's version grows by one on every write, like a product's: it makes the user's ETag
-- and lets a client's If-Match be checked in the same statement that writes.
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE users DROP COLUMN version;
