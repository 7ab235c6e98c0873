package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// The users.Store implementation: users and their refresh tokens.

var _ users.Store = (*DB)(nil)

const userColumns = `id, name, email, role, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }, u *users.User, extra ...any) error {
	return row.Scan(append([]any{&u.ID, &u.Name, &u.Email, &u.Role, ScanTime(&u.CreatedAt), ScanTime(&u.UpdatedAt)}, extra...)...)
}

// CreateUser inserts u; EConflict when its email (by users.EmailKey) or ID is taken.
func (db *DB) CreateUser(ctx context.Context, u users.User, passwordHash string) error {
	return db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `
			INSERT INTO users (id, name, email, email_key, role, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), passwordHash, Time(u.CreatedAt), Time(u.UpdatedAt))
		return err
	})
}

// UserByID returns the user or ENotFound.
func (db *DB) UserByID(ctx context.Context, id string) (users.User, error) {
	var u users.User
	err := scanUser(db.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id), &u)
	return u, MapError(err)
}

// UserByEmail returns the user whose email has the same users.EmailKey, with their
// password hash, or ENotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (users.User, string, error) {
	var u users.User
	var hash string
	err := scanUser(db.Read().QueryRowContext(ctx,
		`SELECT `+userColumns+`, password_hash FROM users WHERE email_key = $1`, users.EmailKey(email)), &u, &hash)
	return u, hash, MapError(err)
}

// ListUsers returns up to limit users with IDs after afterID, in ID order.
func (db *DB) ListUsers(ctx context.Context, limit int, afterID string) ([]users.User, error) {
	rows, err := db.Read().QueryContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, MapError(err)
	}
	defer rows.Close()
	out := []users.User{}
	for rows.Next() {
		var u users.User
		if err := scanUser(rows, &u); err != nil {
			return nil, MapError(err)
		}
		out = append(out, u)
	}
	return out, MapError(rows.Err())
}

// UpdateUser writes u's name, email, role and UpdatedAt, and passwordHash unless it is "".
func (db *DB) UpdateUser(ctx context.Context, u users.User, passwordHash string) error {
	return db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `
			UPDATE users SET name = $2, email = $3, email_key = $4, role = $5, updated_at = $6,
				password_hash = CASE WHEN $7 = '' THEN password_hash ELSE $7 END
			WHERE id = $1`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), Time(u.UpdatedAt), passwordHash)
		return oneRow(res, err)
	})
}

// DeleteUser removes the user; the foreign key's ON DELETE CASCADE removes their refresh
// tokens in the same statement.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	return db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
		return oneRow(res, err)
	})
}

// oneRow turns "no row affected" into sql.ErrNoRows (ENotFound once mapped).
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

const refreshColumns = `hash, family_id, user_id, created_at, expires_at, spent_at`

func scanRefreshToken(row interface{ Scan(...any) error }) (users.RefreshToken, error) {
	var t users.RefreshToken
	err := row.Scan(&t.Hash, &t.Family, &t.UserID, ScanTime(&t.CreatedAt), ScanTime(&t.ExpiresAt), ScanTime(&t.SpentAt))
	return t, err
}

// CreateRefreshToken stores t.
func (db *DB) CreateRefreshToken(ctx context.Context, t users.RefreshToken) error {
	return db.Tx(ctx, func(q Querier) error { return insertRefreshToken(ctx, q, t) })
}

func insertRefreshToken(ctx context.Context, q Querier, t users.RefreshToken) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO refresh_tokens (hash, family_id, user_id, created_at, expires_at, spent_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		t.Hash, t.Family, t.UserID, Time(t.CreatedAt), Time(t.ExpiresAt), Time(t.SpentAt))
	return err
}

// RotateRefreshToken spends the token with hash spent and stores next in one transaction.
// The conditional UPDATE decides between concurrent rotations of one token: on PostgreSQL
// the second waits for the first's row lock, then re-checks spent_at IS NULL and finds it
// set; on SQLite writers are serialized. Either way the loser sees the token spent only
// after the winner's next token is committed.
func (db *DB) RotateRefreshToken(ctx context.Context, spent []byte, next users.RefreshToken) error {
	return db.Tx(ctx, func(q Querier) error {
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

// RefreshTokenByHash returns the token or ENotFound.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash []byte) (users.RefreshToken, error) {
	t, err := scanRefreshToken(db.Read().QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	return t, MapError(err)
}

// DeleteRefreshFamily removes every token of family.
func (db *DB) DeleteRefreshFamily(ctx context.Context, family string) error {
	return db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE family_id = $1`, family)
		return err
	})
}

// DeleteExpiredRefreshTokens removes userID's tokens that expired before now.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, userID string, now time.Time) error {
	return db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < $2`, userID, Time(now))
		return err
	})
}
