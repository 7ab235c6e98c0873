package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"plaza/internal/plaza"
)

// Meta is a small key/value table; it proves a backend works end to end (migrations,
// reads, writes, time columns) and holds instance-wide settings.
type Meta struct{ db *DB }

// Meta returns the meta table of db.
func (db *DB) Meta() Meta { return Meta{db: db} }

// Get returns the value stored under key, or an ENotFound *plaza.Error.
func (m Meta) Get(ctx context.Context, key string) (string, error) {
	var value string
	err := m.db.Read().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", plaza.Wrap(plaza.ENotFound, err, "no meta value with this key")
	}
	if err != nil {
		return "", MapError(err)
	}
	return value, nil
}

// Set stores value under key, replacing any previous value. It runs on q, which is
// usually the Querier of a Tx; a nil q runs it in a transaction of its own.
func (m Meta) Set(ctx context.Context, q Querier, key, value string) error {
	if q == nil {
		return m.db.Tx(ctx, func(q Querier) error { return m.Set(ctx, q, key, value) })
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, Time(time.Now()))
	return MapError(err)
}
