-- +goose Up
-- Chat rooms and their persisted history. Message IDs are UUIDv7 (time-ordered) and use
-- the "C" collation (byte order, as on SQLite), so (room, id) order is send order:
-- recovery reads "after this id", paging "before this id". user_name is the sender's name
-- when sent; no foreign key to users, so a deleted user's messages stay in the history.
CREATE TABLE chat_rooms (
    slug       TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO chat_rooms (slug, name, created_at) VALUES ('general', 'General', '2026-01-01T00:00:00Z');

CREATE TABLE chat_messages (
    room      TEXT COLLATE "C" NOT NULL REFERENCES chat_rooms (slug),
    id        TEXT COLLATE "C" NOT NULL,
    user_id   TEXT NOT NULL,
    user_name TEXT NOT NULL,
    text      TEXT NOT NULL,
    client_id TEXT NOT NULL DEFAULT '',
    sent_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (room, id)
);

-- +goose Down
DROP TABLE chat_messages;
DROP TABLE chat_rooms;
