package users

import (
	"context"
	"time"

	"plaza/internal/plaza"
)

// NewUser is a registration.
type NewUser struct {
	Name     string
	Email    string
	Password string
	Role     plaza.Role // "" means RoleUser; only an admin may ask for another role
}

// Changes are the fields an update sets; nil leaves a field as it is.
type Changes struct {
	Name     *string
	Email    *string
	Password *string
	Role     *plaza.Role
}

// Register creates a user. Anyone may register; the new user's role is RoleUser unless
// an admin creates it (asking for another role without being an admin is EForbidden).
func (s *Service) Register(ctx context.Context, in NewUser) (User, error) {
	p, _ := plaza.PrincipalFrom(ctx)
	if in.Role == "" {
		in.Role = plaza.RoleUser
	}
	if in.Role != plaza.RoleUser && !p.IsAdmin() {
		return User{}, plaza.Errorf(plaza.EForbidden, "only an admin may create a user with role %q", in.Role)
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what the store keeps
	u := User{
		ID:        plaza.NewID(),
		Name:      NormalizeName(in.Name),
		Email:     NormalizeEmail(in.Email),
		Role:      in.Role,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := validate(u, &in.Password); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	if err := s.users.Create(ctx, u, hash); err != nil {
		return User{}, emailConflict(err)
	}
	s.publish(ctx, EventCreated, u)
	return u, nil
}

// Me returns the caller.
func (s *Service) Me(ctx context.Context) (User, error) {
	p, err := principal(ctx)
	if err != nil {
		return User{}, err
	}
	return s.cachedUser(ctx, p.UserID)
}

// Get returns a user to any signed-in caller; the email only to the user themself and
// admins.
func (s *Service) Get(ctx context.Context, id string) (User, error) {
	p, err := principal(ctx)
	if err != nil {
		return User{}, err
	}
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return User{}, notFound(err)
	}
	return u.visibleTo(p), nil
}

// List returns a page of users in creation order, for admins only. cursor is "" for the
// first page; next is "" on the last.
func (s *Service) List(ctx context.Context, limit int, cursor string) (items []User, next string, err error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, "", err
	}
	if !p.IsAdmin() {
		return nil, "", plaza.Errorf(plaza.EForbidden, "only admins may list users")
	}
	var after pageKey
	if cursor != "" {
		if err := plaza.DecodeCursor(cursor, &after); err != nil {
			return nil, "", err
		}
	}
	items, err = s.users.List(ctx, limit+1, after.ID)
	if err != nil {
		return nil, "", err
	}
	if len(items) > limit {
		items = items[:limit]
		next = plaza.EncodeCursor(pageKey{ID: items[limit-1].ID})
	}
	return items, next, nil
}

// pageKey is what a users cursor holds: the last ID of the page (IDs sort by creation).
type pageKey struct {
	ID string `json:"id"`
}

// Update changes a user. The user themself or an admin may; only an admin may change a
// role. A role change or deletion takes effect on existing access tokens at once (see
// Authenticate).
func (s *Service) Update(ctx context.Context, id string, c Changes) (User, error) {
	p, err := selfOrAdmin(ctx, id)
	if err != nil {
		return User{}, err
	}
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return User{}, notFound(err)
	}
	roleChanged := c.Role != nil && *c.Role != u.Role
	if roleChanged && !p.IsAdmin() {
		return User{}, plaza.Errorf(plaza.EForbidden, "only an admin may change a role")
	}
	if c.Name != nil {
		u.Name = NormalizeName(*c.Name)
	}
	if c.Email != nil {
		u.Email = NormalizeEmail(*c.Email)
	}
	if c.Role != nil {
		u.Role = *c.Role
	}
	if err := validate(u, c.Password); err != nil {
		return User{}, err
	}
	var hash string
	if c.Password != nil {
		if hash, err = s.hasher.hash(ctx, *c.Password); err != nil {
			return User{}, err
		}
	}
	u.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	if err := s.users.Update(ctx, u, hash); err != nil {
		return User{}, notFound(emailConflict(err))
	}
	s.forgetUser(ctx, u.ID)
	s.publish(ctx, EventUpdated, u)
	return u, nil
}

// Delete removes a user (the user themself or an admin may), with every refresh token of
// theirs; their access tokens stop working at once.
func (s *Service) Delete(ctx context.Context, id string) error {
	if _, err := selfOrAdmin(ctx, id); err != nil {
		return err
	}
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return notFound(err)
	}
	if err := s.users.Delete(ctx, id); err != nil {
		return notFound(err)
	}
	s.forgetUser(ctx, id)
	s.publish(ctx, EventDeleted, u)
	return nil
}

// EnsureAdmin creates an admin with email and password unless a user with that email
// exists (whatever their role: an existing account is never changed by configuration).
// It reports whether it created one.
func (s *Service) EnsureAdmin(ctx context.Context, name, email, password string) (bool, error) {
	_, _, err := s.users.ByEmail(ctx, email)
	if err == nil {
		return false, nil
	}
	if plaza.ErrorCodeOf(err) != plaza.ENotFound {
		return false, err
	}
	_, err = s.Register(plaza.WithPrincipal(ctx, Operator), NewUser{Name: name, Email: email, Password: password, Role: plaza.RoleAdmin})
	if plaza.ErrorCodeOf(err) == plaza.EConflict {
		// Another instance starting at the same moment created it.
		return false, nil
	}
	return err == nil, err
}

// validate checks u and, when one is being set, the password (which must not resemble
// the user's name or email), reporting every problem at once.
func validate(u User, password *string) error {
	var p plaza.Problems
	u.check(&p)
	if password != nil {
		validatePassword(&p, *password, u.Name, u.Email)
	}
	return p.Err()
}

// emailConflict words the store's EConflict for the only unique column a client sets.
func emailConflict(err error) error {
	if plaza.ErrorCodeOf(err) == plaza.EConflict {
		return &plaza.Error{Code: plaza.EConflict, Message: "a user with this email already exists",
			Fields: []plaza.FieldError{{Field: "email", Message: "is taken"}}, Err: err}
	}
	return err
}

// notFound words the store's ENotFound for users.
func notFound(err error) error {
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return plaza.Wrap(plaza.ENotFound, err, "no user with this id")
	}
	return err
}
