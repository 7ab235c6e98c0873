package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// Users is the users table; it implements users.UserStore.
type Users struct{ db *DB }

// Users returns the users table of db.
func (db *DB) Users() Users { return Users{db: db} }

var _ users.UserStore = Users{}

const userColumns = `id, name, email, role, version, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }, u *users.User, extra ...any) error {
	return row.Scan(append([]any{&u.ID, &u.Name, &u.Email, &u.Role, &u.Version, ScanTime(&u.CreatedAt), ScanTime(&u.UpdatedAt)}, extra...)...)
}

// Create inserts u, and events in the outbox in the same transaction; EConflict when its email (by users.EmailKey) or ID is taken.
func (s Users) Create(ctx context.Context, u users.User, passwordHash string, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		_, err := q.ExecContext(ctx, `
			INSERT INTO users (id, name, email, email_key, role, password_hash, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), passwordHash, max(u.Version, 1), Time(u.CreatedAt), Time(u.UpdatedAt))
		return err
	})
}

// ByID returns the user or ENotFound.
func (s Users) ByID(ctx context.Context, id string) (users.User, error) {
	var u users.User
	err := scanUser(s.db.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id), &u)
	return u, MapError(err)
}

// ByIDs returns the users of ids that exist, in one query.
func (s Users) ByIDs(ctx context.Context, ids []string) ([]users.User, error) {
	out := []users.User{}
	if len(ids) == 0 {
		return out, nil
	}
	marks := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		marks[i] = "$" + strconv.Itoa(i+1)
		args[i] = id
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, MapError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u users.User
		if err := scanUser(rows, &u); err != nil {
			return nil, MapError(err)
		}
		out = append(out, u)
	}
	return out, MapError(rows.Err())
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

// Update writes u's name, email, role and UpdatedAt, and passwordHash unless it is "",
// if the stored version is still version, and bumps the version. ENotFound when the user is
// gone, EPreconditionFailed when the version moved on, EConflict when the email is taken or
// the write would leave no admin.
func (s Users) Update(ctx context.Context, u users.User, passwordHash string, version int64, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		if u.Role != plaza.RoleAdmin {
			if err := s.keepAnAdmin(ctx, q, u.ID); err != nil {
				return err
			}
		}
		res, err := q.ExecContext(ctx, `
			UPDATE users SET name = $2, email = $3, email_key = $4, role = $5, updated_at = $6,
				password_hash = CASE WHEN $7 = '' THEN password_hash ELSE $7 END,
				version = version + 1
			WHERE id = $1 AND version = $8`,
			u.ID, u.Name, u.Email, users.EmailKey(u.Email), string(u.Role), Time(u.UpdatedAt), passwordHash, version)
		return s.versioned(ctx, q, u.ID, res, err)
	})
}

// Delete removes the user if the stored version is still version; errors as Update. The
// foreign key's ON DELETE CASCADE removes their refresh tokens in the same statement.
func (s Users) Delete(ctx context.Context, id string, version int64, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		if err := s.keepAnAdmin(ctx, q, id); err != nil {
			return err
		}
		res, err := q.ExecContext(ctx, `DELETE FROM users WHERE id = $1 AND version = $2`, id, version)
		return s.versioned(ctx, q, id, res, err)
	})
}

// keepAnAdmin refuses, inside the write's transaction, to let user id stop being an admin
// when they are the last one: a deployment without an admin cannot make one over the API.
// On PostgreSQL the admins' rows are locked first, so two admins demoting each other at
// once cannot both pass; SQLite's single writer serializes the transactions anyway.
func (s Users) keepAnAdmin(ctx context.Context, q Querier, id string) error {
	var role string
	switch err := q.QueryRowContext(ctx, `SELECT role FROM users WHERE id = $1`, id).Scan(&role); {
	case errors.Is(err, sql.ErrNoRows):
		return nil // the write itself reports the missing user
	case err != nil:
		return err
	case role != string(plaza.RoleAdmin):
		return nil
	}
	lock := ""
	if s.db.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM users WHERE role = 'admin'`+lock)
	if err != nil {
		return err
	}
	defer rows.Close()
	admins, isAdmin := 0, false
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return err
		}
		admins++
		isAdmin = isAdmin || a == id
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if isAdmin && admins == 1 {
		return plaza.Errorf(plaza.EConflict, "this is the last admin: make another user an admin first")
	}
	return nil
}

// versioned explains a conditional write that touched no row: the user is gone
// (ENotFound) or the version moved on (EPreconditionFailed).
func (s Users) versioned(ctx context.Context, q Querier, id string, res sql.Result, err error) error {
	if err = oneRow(res, err); !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return plaza.Errorf(plaza.EPreconditionFailed, "the stored version has changed; read the user again")
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
