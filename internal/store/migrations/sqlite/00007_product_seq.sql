-- +goose Up
-- Nothing to do: products.seq, the insertion order that PostgreSQL's 00007 adds, is the
-- INTEGER PRIMARY KEY here since 00003, and the full-text index's rowid, which FTS5 walks
-- newest first for a relevance page's window (catalog.RankedMatches).

-- +goose Down
