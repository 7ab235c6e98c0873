package users

import (
	"context"
	"log/slog"
	"time"

	"plaza/internal/plaza"
)

// UserStore keeps users. store.Users implements it; its contract test runs on SQLite and
// PostgreSQL.
type UserStore interface {
	// Writes take the events that describe them: they are stored in the same transaction
	// (the outbox) and published after the commit, so an acknowledged change always has its
	// event.
	// Create inserts u with its password hash. EConflict when the email (compared by
	// EmailKey) or the ID is taken.
	Create(ctx context.Context, u User, passwordHash string, events ...plaza.Outgoing) error
	// ByID returns the user or ENotFound.
	ByID(ctx context.Context, id string) (User, error)
	// ByIDs returns the users of ids that exist, in no particular order, in one query.
	ByIDs(ctx context.Context, ids []string) ([]User, error)
	// ByEmail looks the email up by EmailKey and returns the user and password hash, or
	// ENotFound.
	ByEmail(ctx context.Context, email string) (User, string, error)
	// List returns up to limit users in ID order (creation order: IDs are UUIDv7),
	// starting after the ID afterID ("" for the first page).
	List(ctx context.Context, limit int, afterID string) ([]User, error)
	// Update stores u's name, email, role and UpdatedAt, and the password hash unless it
	// is "", if the stored version is still version, and bumps it. ENotFound for an unknown
	// ID, EPreconditionFailed when the version moved on, EConflict when the email is taken
	// or the last admin would stop being one.
	Update(ctx context.Context, u User, passwordHash string, version int64, events ...plaza.Outgoing) error
	// Delete removes the user and every refresh token of theirs if the stored version is
	// still version; errors as Update (the last admin cannot be deleted).
	Delete(ctx context.Context, id string, version int64, events ...plaza.Outgoing) error
}

// TokenStore keeps refresh tokens. store.RefreshTokens implements it, under the same
// contract test as UserStore.
type TokenStore interface {
	// Create stores a new refresh token.
	Create(ctx context.Context, t RefreshToken) error
	// Rotate spends the token with hash spent and stores next, in one transaction: of
	// concurrent rotations of one token exactly one succeeds, and a rotation that lost
	// sees the token spent only once the winner's next token is stored, so revoking the
	// family after it also removes that one. EConflict when the token was spent already,
	// ENotFound when it is gone.
	Rotate(ctx context.Context, spent []byte, next RefreshToken) error
	// ByHash returns the token or ENotFound.
	ByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// DeleteFamily removes every token of the family.
	DeleteFamily(ctx context.Context, family string) error
	// DeleteUser removes every token of the user: all their sessions end.
	DeleteUser(ctx context.Context, userID string) error
	// DeleteExpired removes the user's tokens that expired before now.
	DeleteExpired(ctx context.Context, userID string, now time.Time) error
}

// RefreshToken is a stored refresh token. The token itself is never stored, only its
// SHA-256. A family is every token descended from one login.
type RefreshToken struct {
	Hash      []byte
	Family    string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	SpentAt   time.Time // zero while unspent
}

// Cache is what the service needs from the shared cache (cache.Cache implements it):
// revoked token IDs, login failure counters and cached user roles, shared by every
// instance when the cache is Redis.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	GetMany(ctx context.Context, keys ...string) ([][]byte, []bool)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Delete(ctx context.Context, keys ...string) error
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func(context.Context) ([]byte, error)) ([]byte, bool, error)
}

// Options configure New. Users, Tokens, Cache and Keys are required.
type Options struct {
	Users  UserStore
	Tokens TokenStore
	Cache  Cache
	// Keys are the JWT HMAC keys: the first signs, all verify.
	Keys   [][]byte
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject one to expire tokens.
	Now func() time.Time
	// PasswordParams are argon2id's costs for new hashes (default DefaultParams). Tests
	// use cheaper ones; existing hashes verify with the parameters they carry.
	PasswordParams Params
	// SessionLifetime is how long a login's refresh tokens last in all (default
	// RefreshTTL): rotation never extends it.
	SessionLifetime time.Duration
	// RegistrationsPerIP bounds self-registrations per client IP in each ThrottleWindow
	// (0: MaxRegistrationsPerIP; negative: no bound, for tests that register many users).
	RegistrationsPerIP int
}

// Service is the users and auth service. It is safe for concurrent use.
type Service struct {
	users         UserStore
	refreshTokens TokenStore
	cache         Cache
	keys          *keyring
	log           *slog.Logger
	now           func() time.Time
	hasher        *hasher

	verifier           *Verifier // signature, claims and revocations; Authenticate adds the role
	decoded            *decodedUsers
	sessionLifetime    time.Duration
	registrationsPerIP int
}

// New builds the service.
func New(opts Options) (*Service, error) {
	kr, err := newKeyring(opts.Keys)
	if err != nil {
		return nil, err
	}
	s := &Service{users: opts.Users, refreshTokens: opts.Tokens, cache: opts.Cache, keys: kr, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.verifier = &Verifier{keys: kr, state: opts.Cache, now: s.now, verified: newVerifiedTokens(maxVerified)}
	s.decoded = newDecodedUsers(maxVerified)
	s.registrationsPerIP = opts.RegistrationsPerIP
	if s.registrationsPerIP == 0 {
		s.registrationsPerIP = MaxRegistrationsPerIP
	}
	s.sessionLifetime = opts.SessionLifetime
	if s.sessionLifetime <= 0 {
		s.sessionLifetime = RefreshTTL
	}
	params := opts.PasswordParams
	if params == (Params{}) {
		params = DefaultParams
	}
	if s.hasher, err = newHasher(params); err != nil {
		return nil, err
	}
	return s, nil
}

// Operator is the principal of whoever runs the server: the `plaza user` command and the
// start-up admin bootstrap act as it. It is an admin that is no stored user, and no token
// can name it (tokens are only issued for stored users, whose IDs are UUIDs).
var Operator = plaza.Principal{UserID: "operator", Role: plaza.RoleAdmin}

// Event types on plaza.StreamUsers.
const (
	EventCreated = "user.created"
	EventUpdated = "user.updated"
	EventDeleted = "user.deleted"
)

// eventData is all a user event carries: no email, no hash (docs/contracts.md, "Domain events on the bus").
type eventData struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// event describes a change of u for the users stream; the store writes it in the change's
// transaction. It carries no email and no hash (docs/contracts.md).
func (s *Service) event(ctx context.Context, typ string, u User) (plaza.Outgoing, error) {
	p, _ := plaza.PrincipalFrom(ctx)
	ev, err := plaza.NewEvent(typ, p.UserID, eventData{ID: u.ID, Name: u.Name}, s.now())
	if err != nil {
		return plaza.Outgoing{}, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	return plaza.Outgoing{Stream: plaza.StreamUsers, Event: ev}, nil
}

// principal returns the caller, or EUnauthenticated.
func principal(ctx context.Context) (plaza.Principal, error) {
	p, ok := plaza.PrincipalFrom(ctx)
	if !ok {
		return p, plaza.Errorf(plaza.EUnauthenticated, "sign in first: this needs a Bearer access token")
	}
	return p, nil
}

// selfOrAdmin returns the caller when they may manage user id: themself, or any user when
// they are an admin.
func selfOrAdmin(ctx context.Context, id string) (plaza.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, err
	}
	if p.UserID != id && !p.IsAdmin() {
		return p, plaza.Errorf(plaza.EForbidden, "only the user themself or an admin may do this")
	}
	return p, nil
}
