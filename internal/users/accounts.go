package users

import (
	"context"
	"strconv"
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
	// CurrentPassword confirms a change of one's own email or password: a stolen access
	// token alone must not be enough to take the account over.
	CurrentPassword *string
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
	if !p.IsAdmin() && s.registrationsPerIP > 0 {
		counters := s.registerCounters(ctx)
		if err := s.throttled(ctx, counters); err != nil {
			return User{}, err
		}
		s.loginFailed(ctx, counters) // every attempt counts: a 409 is what enumerates
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what the store keeps
	u := User{
		ID:        plaza.NewID(),
		Name:      NormalizeName(in.Name),
		Email:     NormalizeEmail(in.Email),
		Role:      in.Role,
		Version:   1,
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
	ev, err := s.event(ctx, EventCreated, u)
	if err != nil {
		return User{}, err
	}
	if err := s.users.Create(ctx, u, hash, ev); err != nil {
		return User{}, emailConflict(err)
	}
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

// GetMany returns the users of ids that exist, as Get would show each to the caller, in
// one store call: a transport showing many authors at once (a page of chat messages) asks
// once, not once per author. At most MaxLimit IDs.
func (s *Service) GetMany(ctx context.Context, ids []string) ([]User, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > plaza.MaxLimit {
		return nil, plaza.Errorf(plaza.EBadRequest, "at most %d users at once", plaza.MaxLimit)
	}
	found, err := s.users.ByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range found {
		found[i] = found[i].visibleTo(p)
	}
	return found, nil
}

// List returns a page of users in creation order, for admins only.
func (s *Service) List(ctx context.Context, req plaza.PageRequest) (plaza.Page[User], error) {
	p, err := principal(ctx)
	if err != nil {
		return plaza.Page[User]{}, err
	}
	// The page is checked before the role: how a list is asked for is no secret.
	if req, err = req.Normalize(); err != nil {
		return plaza.Page[User]{}, err
	}
	if !p.IsAdmin() {
		return plaza.Page[User]{}, plaza.Errorf(plaza.EForbidden, "only admins may list users")
	}
	var after pageKey
	if req.Cursor != "" {
		if err := plaza.DecodeCursor(req.Cursor, &after); err != nil {
			return plaza.Page[User]{}, err
		}
		if !plaza.ValidID(after.ID) {
			return plaza.Page[User]{}, plaza.BadParam("cursor", "cursor is not a cursor this server issued")
		}
	}
	items, err := s.users.List(ctx, req.Limit+1, after.ID)
	if err != nil {
		return plaza.Page[User]{}, err
	}
	return plaza.PageOf(items, req.Limit, Cursor), nil
}

// Cursor is the list cursor that continues after u: every user has one, so a transport
// can hand one out per item (GraphQL edges), not only per page.
func Cursor(u User) string { return plaza.EncodeCursor(pageKey{ID: u.ID}) }

// pageKey is what a users cursor holds: the last ID of the page (IDs sort by creation).
type pageKey struct {
	ID string `json:"id"`
}

// Editable is what a client may read back and change of a user: the document a merge
// patch applies to (the password is write-only, so it is never in it).
type Editable struct {
	Name  string     `json:"name"`
	Email string     `json:"email"`
	Role  plaza.Role `json:"role"`
}

// Update changes a user. The user themself or an admin may; only an admin may change a
// role. A role change or deletion takes effect on existing access tokens at once (see
// Authenticate). expect is the client's precondition on the user's version.
func (s *Service) Update(ctx context.Context, id string, expect plaza.Expect, c Changes) (User, error) {
	return s.Patch(ctx, id, expect, func(Editable) (Changes, error) { return c, nil })
}

// Patch changes a user to what apply makes of their current fields, with Update's rules.
// Without a precondition a write that raced another is applied again on the new version;
// with one, the race is a precondition failure.
func (s *Service) Patch(ctx context.Context, id string, expect plaza.Expect, apply func(Editable) (Changes, error)) (User, error) {
	p, err := selfOrAdmin(ctx, id)
	if err != nil {
		return User{}, err
	}
	if apply == nil {
		return User{}, plaza.Errorf(plaza.EBadRequest, "the change to apply is missing")
	}
	for attempt := 1; ; attempt++ {
		u, c, err := s.patchOnce(ctx, p, id, expect, apply)
		if plaza.ErrorCodeOf(err) == plaza.EPreconditionFailed && !expect.IsSet() && attempt < writeAttempts {
			continue
		}
		if err != nil {
			return User{}, err
		}
		s.forgetUser(ctx, u.ID)
		if c.Password != nil {
			if err := s.endSessions(ctx, u.ID); err != nil {
				return User{}, err
			}
		}
		return u, nil
	}
}

// writeAttempts bounds retries of an unconditional write that raced another write.
const writeAttempts = 3

// patchOnce reads the user, applies the change and writes it if the version is unchanged.
func (s *Service) patchOnce(ctx context.Context, p plaza.Principal, id string, expect plaza.Expect, apply func(Editable) (Changes, error)) (User, Changes, error) {
	u, err := s.current(ctx, id, expect)
	if err != nil {
		return User{}, Changes{}, err
	}
	c, err := apply(Editable{Name: u.Name, Email: u.Email, Role: u.Role})
	if err != nil {
		return User{}, c, err
	}
	before := u
	if c.Role != nil && *c.Role != u.Role && !p.IsAdmin() {
		return User{}, c, plaza.Errorf(plaza.EForbidden, "only an admin may change a role")
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
		return User{}, c, err
	}
	emailChanged := EmailKey(u.Email) != EmailKey(before.Email)
	switch {
	case (emailChanged || c.Password != nil) && p.UserID == id:
		if err := s.confirmPassword(ctx, before, c.CurrentPassword); err != nil {
			return User{}, c, err
		}
	case emailChanged || c.Password != nil:
		s.log.WarnContext(ctx, "users: an admin changed another user's credentials",
			"admin_id", p.UserID, "user_id", id, "email_changed", emailChanged, "password_changed", c.Password != nil)
	}
	var hash string
	if c.Password != nil {
		if hash, err = s.hasher.hash(ctx, *c.Password); err != nil {
			return User{}, c, err
		}
	}
	u.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	ev, err := s.event(ctx, EventUpdated, u)
	if err != nil {
		return User{}, c, err
	}
	if err := s.users.Update(ctx, u, hash, before.Version, ev); err != nil {
		return User{}, c, written(notFound(emailConflict(err)), expect)
	}
	u.Version = before.Version + 1
	return u, c, nil
}

// current reads user id for a write and checks the client's precondition against it.
func (s *Service) current(ctx context.Context, id string, expect plaza.Expect) (User, error) {
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return User{}, notFound(err)
	}
	if !expect.Allows(u.Version) {
		return User{}, staleUser()
	}
	return u, nil
}

func staleUser() *plaza.Error {
	return plaza.Errorf(plaza.EPreconditionFailed, "the user has changed since the version you read; fetch it again")
}

// written words a version race for the client: with their precondition it is stale;
// without one, having lost every retry, it is a conflict they may retry.
func written(err error, expect plaza.Expect) error {
	if plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
		return err
	}
	if expect.IsSet() {
		return plaza.Wrap(plaza.EPreconditionFailed, err, staleUser().Message)
	}
	return plaza.Wrap(plaza.EConflict, err, "the user kept changing while this write was applied; retry")
}

// endSessions ends every session of a user whose password changed: a session stolen
// before the change must not outlive it. Every refresh family is deleted, and access
// tokens issued before this second are refused on every instance (the mark lives in the
// shared cache for as long as such a token can be valid).
func (s *Service) endSessions(ctx context.Context, userID string) error {
	ctx = context.WithoutCancel(ctx) // the password is changed: finish what goes with it
	if err := s.refreshTokens.DeleteUser(ctx, userID); err != nil {
		return plaza.Wrap(plaza.EUnavailable, err, "the password is changed, but other sessions could not be ended; change it again")
	}
	since := strconv.FormatInt(s.now().Unix(), 10)
	if err := s.cache.Set(ctx, sessionsKey(userID), []byte(since), AccessTTL+Leeway); err != nil {
		return plaza.Wrap(plaza.EUnavailable, err, "the password is changed, but signed-in sessions could not be ended; change it again")
	}
	return nil
}

// Delete removes a user (the user themself or an admin may), with every refresh token of
// theirs; their access tokens stop working at once. The last admin cannot be deleted.
func (s *Service) Delete(ctx context.Context, id string, expect plaza.Expect) error {
	if _, err := selfOrAdmin(ctx, id); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		u, err := s.current(ctx, id, expect)
		if err != nil {
			return err
		}
		ev, err := s.event(ctx, EventDeleted, u)
		if err != nil {
			return err
		}
		err = s.users.Delete(ctx, id, u.Version, ev)
		if plaza.ErrorCodeOf(err) == plaza.EPreconditionFailed && !expect.IsSet() && attempt < writeAttempts {
			continue
		}
		if err != nil {
			return written(notFound(err), expect)
		}
		s.forgetUser(ctx, id)
		return nil
	}
}

// confirmPassword checks the current password a user gives to change their own email or
// password. A wrong one counts as a failed login (same counters, same throttle), so this
// is no way around login throttling.
func (s *Service) confirmPassword(ctx context.Context, u User, current *string) error {
	if current == nil || *current == "" {
		return plaza.Invalid(plaza.FieldError{Field: "current_password", Message: "is required to change your email or password"})
	}
	counters := s.loginCounters(ctx, u.Email)
	if err := s.throttled(ctx, counters); err != nil {
		return err
	}
	_, hash, err := s.users.ByEmail(ctx, u.Email)
	if err != nil {
		return notFound(err)
	}
	ok, err := s.hasher.verify(ctx, *current, hash)
	if err != nil {
		return err
	}
	if !ok {
		s.loginFailed(ctx, counters)
		return &plaza.Error{Code: plaza.EForbidden, Message: "the current password is wrong",
			Fields: []plaza.FieldError{{Field: "current_password", Message: "is wrong"}}}
	}
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

// ValidateAdmin checks the admin EnsureAdmin would register, storing nothing: start-up
// refuses weak credentials before it writes anything.
func ValidateAdmin(name, email, password string) error {
	return validate(User{Name: NormalizeName(name), Email: NormalizeEmail(email), Role: plaza.RoleAdmin}, &password)
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
