-- +goose Up
-- The transactional outbox: each domain event is written in the same transaction as the
-- change it describes, and a relay publishes the rows to the bus in seq order, deleting
-- each once published. seq is AUTOINCREMENT so a deleted row's number is never reused:
-- order is the order of commits (SQLite has one writer). event is the event as JSON, its
-- key included, so a row published twice is recognised by subscribers.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    stream     TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE outbox;
