package store

import "context"

// AnyAdmin reports whether some user is an admin, so start-up can say how to get one when
// none is.
func (s Users) AnyAdmin(ctx context.Context) (bool, error) {
	var ok bool
	err := s.db.Read().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')`).Scan(&ok)
	return ok, MapError(err)
}
