-- +goose Up
-- Times are TEXT in RFC 3339 UTC with fixed-width nanoseconds; see store.Time.
-- email keeps the spelling the user gave; email_key (users.EmailKey: lower-cased in Go, so
-- both backends fold case alike) is what is unique and what logins look up.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Refresh tokens are stored as their SHA-256 only. A family is every token descended from
-- one login; spent tokens stay until they expire so that their reuse is recognised.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    spent_at   TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_expires ON refresh_tokens (user_id, expires_at);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE users;
