package store

import (
	"context"
	"database/sql"

	"plaza/internal/users"
)

// Users is the users table; it implements users.UserStore.
type Users struct{ db *DB }

// Users returns the users table of db.
func (db *DB) Users() Users { return Users{db: db} }

var _ users.UserStore = Users{}

const userColumns = `id, name, email, role, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }, u *users.User, extra ...any) error {
	return row.Scan(append([]any{&u.ID, &u.Name, &u.Email, &u.Role, ScanTime(&u.CreatedAt), ScanTime(&u.UpdatedAt)}, extra...)...)
}

// Create inserts u; EConflict when its email (by users.EmailKey) or ID is taken.
func (s Users) Create(ctx context.Context, u users.User, passwordHash string) error {
	return s.db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `
			INSERT INTO users (id, name, email, email_key, role, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), passwordHash, Time(u.CreatedAt), Time(u.UpdatedAt))
		return err
	})
}

// ByID returns the user or ENotFound.
func (s Users) ByID(ctx context.Context, id string) (users.User, error) {
	var u users.User
	err := scanUser(s.db.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id), &u)
	return u, MapError(err)
}

// ByEmail returns the user whose email has the same users.EmailKey, with their
// password hash, or ENotFound.
func (s Users) ByEmail(ctx context.Context, email string) (users.User, string, error) {
	var u users.User
	var hash string
	err := scanUser(s.db.Read().QueryRowContext(ctx,
		`SELECT `+userColumns+`, password_hash FROM users WHERE email_key = $1`, users.EmailKey(email)), &u, &hash)
	return u, hash, MapError(err)
}

// List returns up to limit users with IDs after afterID, in ID order.
func (s Users) List(ctx context.Context, limit int, afterID string) ([]users.User, error) {
	rows, err := s.db.Read().QueryContext(ctx,
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

// Update writes u's name, email, role and UpdatedAt, and passwordHash unless it is "".
func (s Users) Update(ctx context.Context, u users.User, passwordHash string) error {
	return s.db.Tx(ctx, func(q Querier) error {
		res, err := q.ExecContext(ctx, `
			UPDATE users SET name = $2, email = $3, email_key = $4, role = $5, updated_at = $6,
				password_hash = CASE WHEN $7 = '' THEN password_hash ELSE $7 END
			WHERE id = $1`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), Time(u.UpdatedAt), passwordHash)
		return oneRow(res, err)
	})
}

// Delete removes the user; the foreign key's ON DELETE CASCADE removes their refresh
// tokens in the same statement.
func (s Users) Delete(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(q Querier) error {
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
