-- +goose Up
-- IDs use the "C" collation (byte order, as on SQLite) so both backends list users in the
-- same order. email keeps the spelling the user gave; email_key (users.EmailKey: lower-cased
-- in Go, so both backends fold case alike) is what is unique and what logins look up.
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Refresh tokens are stored as their SHA-256 only. A family is every token descended from
-- one login; spent tokens stay until they expire so that their reuse is recognised.
CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    spent_at   TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_expires ON refresh_tokens (user_id, expires_at);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE users;
