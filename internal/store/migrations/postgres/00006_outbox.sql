-- +goose Up
-- The transactional outbox: each domain event is written in the same transaction as the
-- change it describes, and a relay publishes the rows to the bus in seq order, deleting
-- each once published. Writers of one stream take a transaction-level advisory lock
-- before their insert (store/outbox.go), so within a stream seq order is commit order.
-- event is the event as JSON, its key included, so a row published twice is recognised
-- by subscribers.
CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream     TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE outbox;
