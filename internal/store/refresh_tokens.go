package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// RefreshTokens is the refresh_tokens table; it implements users.TokenStore.
type RefreshTokens struct{ db *DB }

// RefreshTokens returns the refresh token table of db.
func (db *DB) RefreshTokens() RefreshTokens { return RefreshTokens{db: db} }

var _ users.TokenStore = RefreshTokens{}

const refreshColumns = `hash, family_id, user_id, created_at, expires_at, spent_at`

func scanRefreshToken(row interface{ Scan(...any) error }) (users.RefreshToken, error) {
	var t users.RefreshToken
	err := row.Scan(&t.Hash, &t.Family, &t.UserID, ScanTime(&t.CreatedAt), ScanTime(&t.ExpiresAt), ScanTime(&t.SpentAt))
	return t, err
}

// Create stores t.
func (s RefreshTokens) Create(ctx context.Context, t users.RefreshToken) error {
	return s.db.Tx(ctx, func(q Querier) error { return insertRefreshToken(ctx, q, t) })
}

func insertRefreshToken(ctx context.Context, q Querier, t users.RefreshToken) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO refresh_tokens (hash, family_id, user_id, created_at, expires_at, spent_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		t.Hash, t.Family, t.UserID, Time(t.CreatedAt), Time(t.ExpiresAt), Time(t.SpentAt))
	return err
}

// Rotate spends the token with hash spent and stores next in one transaction.
// The conditional UPDATE decides between concurrent rotations of one token: on PostgreSQL
// the second waits for the first's row lock, then re-checks spent_at IS NULL and finds it
// set; on SQLite writers are serialized. Either way the loser sees the token spent only
// after the winner's next token is committed.
func (s RefreshTokens) Rotate(ctx context.Context, spent []byte, next users.RefreshToken) error {
	return s.db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET spent_at = $2 WHERE hash = $1 AND spent_at IS NULL`, spent, Time(next.CreatedAt))
		if err = oneRow(res, err); errors.Is(err, sql.ErrNoRows) {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_tokens WHERE hash = $1`, spent).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return plaza.Errorf(plaza.ENotFound, "no such refresh token")
			}
			return plaza.Errorf(plaza.EConflict, "the refresh token was spent already")
		}
		if err != nil {
			return err
		}
		return insertRefreshToken(ctx, q, next)
	})
}

// ByHash returns the token or ENotFound.
func (s RefreshTokens) ByHash(ctx context.Context, hash []byte) (users.RefreshToken, error) {
	t, err := scanRefreshToken(s.db.Read().QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	return t, MapError(err)
}

// DeleteFamily removes every token of family.
func (s RefreshTokens) DeleteFamily(ctx context.Context, family string) error {
	return s.db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE family_id = $1`, family)
		return err
	})
}

// DeleteUser removes every token of userID: every session of theirs ends.
func (s RefreshTokens) DeleteUser(ctx context.Context, userID string) error {
	return s.db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1`, userID)
		return err
	})
}

// DeleteExpired removes userID's tokens that expired before now.
func (s RefreshTokens) DeleteExpired(ctx context.Context, userID string, now time.Time) error {
	return s.db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < $2`, userID, Time(now))
		return err
	})
}
