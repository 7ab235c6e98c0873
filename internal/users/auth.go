package users

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"plaza/internal/plaza"
)

// Login throttling: failed logins are counted per email and per client IP in 15-minute
// windows aligned on the clock, weighed as a sliding window: the previous window's count
// adds to the current one in proportion to the part of it still within the last 15
// minutes (as if its failures had been spread evenly), so that failures on both sides of a
// boundary add up; fixed windows let 2×limit−2 guesses straddle one within seconds. The
// estimate is the usual sliding-window counter's: failures bunched at a window's end weigh
// less as the next goes on, so the exact bound over any 15 minutes is 2×limit−1, reached
// only over most of them. Past the limit, logins answer ERateLimited until the estimate
// is under it again.
const (
	ThrottleWindow      = 15 * time.Minute
	MaxFailuresPerEmail = 5
	MaxFailuresPerIP    = 20
	// MaxRegistrationsPerIP is the default bound on registrations (successful or not) per
	// client IP and window: enough for an office behind one address, too few to map which
	// emails have accounts.
	MaxRegistrationsPerIP = 30
)

// roleTTL bounds how long Authenticate trusts a cached role (see currentRole).
const roleTTL = time.Minute

var errBadLogin = plaza.Errorf(plaza.EUnauthenticated, "the email or password is wrong")

// Login checks an email and password and returns a new token pair, starting a new refresh
// token family. A wrong email and a wrong password answer the same error after the same
// work (one argon2id hash), so responses do not tell which accounts exist.
func (s *Service) Login(ctx context.Context, email, password string) (Tokens, error) {
	var probs plaza.Problems
	if email == "" {
		probs.Add("email", "must not be empty")
	}
	if password == "" {
		probs.Add("password", "must not be empty")
	}
	if err := probs.Err(); err != nil {
		return Tokens{}, err
	}
	counters := s.loginCounters(ctx, email)
	if err := s.throttled(ctx, counters); err != nil {
		return Tokens{}, err
	}
	u, hash, err := s.users.ByEmail(ctx, email)
	known := err == nil
	switch {
	case plaza.ErrorCodeOf(err) == plaza.ENotFound:
		hash = s.hasher.dummy
	case err != nil:
		return Tokens{}, err
	}
	ok, err := s.hasher.verify(ctx, password, hash)
	if err != nil {
		return Tokens{}, err
	}
	if !ok || !known {
		s.loginFailed(ctx, counters)
		return Tokens{}, errBadLogin
	}
	// A success clears the email's count (its owner is back), not the IP's: otherwise one
	// valid account would reset an attacker's per-IP budget between guesses.
	if err := s.cache.Delete(ctx, counters[0].count, counters[0].prev); err != nil {
		s.log.WarnContext(ctx, "users: clearing the login failure count failed", "err", err)
	}
	if err := s.refreshTokens.DeleteExpired(ctx, u.ID, s.now()); err != nil {
		return Tokens{}, err
	}
	return s.issue(ctx, u)
}

// Refresh spends a refresh token and returns a new pair in the same family. A token that
// was spent before is treated as stolen: the whole family, the newest token included, is
// revoked, and the caller must log in again.
func (s *Service) Refresh(ctx context.Context, token string) (Tokens, error) {
	if token == "" {
		return Tokens{}, plaza.Invalid(plaza.FieldError{Field: "refresh_token", Message: "must not be empty"})
	}
	hash, err := parseRefreshToken(token)
	if err != nil {
		return Tokens{}, err
	}
	t, err := s.refreshTokens.ByHash(ctx, hash)
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return Tokens{}, errBadRefresh
	}
	if err != nil {
		return Tokens{}, err
	}
	if !t.SpentAt.IsZero() {
		return Tokens{}, s.reused(ctx, t)
	}
	now := s.now()
	if !now.Before(t.ExpiresAt) {
		return Tokens{}, errBadRefresh
	}
	u, err := s.users.ByID(ctx, t.UserID)
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return Tokens{}, errBadRefresh
	}
	if err != nil {
		return Tokens{}, err
	}
	refresh, next := s.newRefresh(u.ID, t.Family, now)
	// Rotation never extends a session: every token of a family expires when the first
	// did, SessionLifetime after the login, so a stolen session ends then at the latest.
	next.ExpiresAt = t.ExpiresAt
	switch err := s.refreshTokens.Rotate(ctx, hash, next); plaza.ErrorCodeOf(err) {
	case "":
	case plaza.EConflict: // spent by a concurrent refresh since we read it
		return Tokens{}, s.reused(ctx, t)
	case plaza.ENotFound: // its family was revoked since we read it
		return Tokens{}, errBadRefresh
	default:
		return Tokens{}, err
	}
	return s.tokens(u, t.Family, refresh, now)
}

// reused revokes the family of a refresh token presented after it was spent: one of the
// two presenters is not its owner.
func (s *Service) reused(ctx context.Context, t RefreshToken) error {
	if err := s.refreshTokens.DeleteFamily(ctx, t.Family); err != nil {
		return err
	}
	s.revokeFamily(ctx, t.Family)
	s.log.WarnContext(ctx, "users: a spent refresh token was presented again; its family is revoked", "user_id", t.UserID)
	return plaza.Errorf(plaza.EUnauthenticated,
		"this refresh token was already used and may have been stolen; every session of its login has been ended: log in again")
}

// Logout ends the caller's session: the access token that authenticated the call is
// revoked until it would have expired (in the shared cache, so every instance honours it),
// and the refresh token's whole family is deleted. Logging out with a refresh token that
// is already gone, or is not the caller's, is not an error and still revokes the caller's
// access token.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if refreshToken == "" {
		return plaza.Invalid(plaza.FieldError{Field: "refresh_token", Message: "must not be empty"})
	}
	if hash, err := parseRefreshToken(refreshToken); err == nil {
		t, err := s.refreshTokens.ByHash(ctx, hash)
		switch {
		case err == nil && t.UserID != p.UserID:
			// Answered as for an unknown token: saying it belongs to someone else would
			// confirm that it is live. The caller is still signed out below.
			s.log.WarnContext(ctx, "users: logout presented another user's refresh token", "user_id", p.UserID)
		case err == nil:
			if err := s.refreshTokens.DeleteFamily(ctx, t.Family); err != nil {
				return err
			}
			s.revokeFamily(ctx, t.Family)
		case plaza.ErrorCodeOf(err) != plaza.ENotFound:
			return err
		}
	}
	if p.TokenID != "" {
		// The refresh family is gone already; if the revocation cannot be stored the client
		// must hear it, because the access token would stay valid until it expires. Logging
		// out again is safe.
		if err := s.cache.Set(ctx, revokedKey(p.TokenID), []byte("1"), AccessTTL+Leeway); err != nil {
			return plaza.Wrap(plaza.EUnavailable, err, "the refresh token is revoked, but the access token could not be revoked; log out again")
		}
	}
	return nil
}

// Authenticate verifies an access token and returns its principal. It implements
// httpapi.Authenticator; every transport authenticates through it.
//
// Besides the signature and claims it checks two things that can change before the token
// expires. Logout puts the token's jti on a revocation list in the cache. And the user's
// current record is looked up (cached for roleTTL, dropped from the cache on every change
// and deletion): a deleted user's tokens fail at once, and a demoted admin loses admin
// rights at once rather than when the token expires. A lookup was chosen over a "revoked
// before T" marker because a marker, read through a cache that treats an outage as a miss,
// would let a deleted user back in while Redis is down; the lookup falls back to the
// database instead.
func (s *Service) Authenticate(ctx context.Context, token string) (plaza.Principal, error) {
	c, err := s.verifier.Verify(ctx, token)
	if err != nil {
		return plaza.Principal{}, err
	}
	role, err := s.currentRole(ctx, c.UserID)
	if err != nil {
		return plaza.Principal{}, err
	}
	return plaza.Principal{UserID: c.UserID, Role: role, TokenID: c.TokenID, Family: c.Family, IssuedAt: c.IssuedAt}, nil
}

// deletedUser is cached for a user that no longer exists.
const deletedUser = "-"

// cachedUser returns the user, cached for roleTTL and dropped from the cache on every
// change and deletion (forgetUser), so Authenticate and Me cost no query on a hit.
func (s *Service) cachedUser(ctx context.Context, userID string) (User, error) {
	load := func(ctx context.Context) ([]byte, error) {
		u, err := s.users.ByID(ctx, userID)
		if plaza.ErrorCodeOf(err) == plaza.ENotFound {
			return []byte(deletedUser), nil
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(u)
	}
	val, _, err := s.cache.GetOrLoad(ctx, userKey(userID), roleTTL, load)
	if err != nil {
		return User{}, err
	}
	u, ok, err := s.decoded.decode(userID, val)
	if err != nil {
		// Not written by this code (another version of Plaza sharing the cache): a miss,
		// as the catalog treats an unreadable entry, never a verdict on the user.
		s.log.WarnContext(ctx, "users: unreadable cached user dropped", "user_id", userID, "err", err)
		s.forgetUser(ctx, userID)
		if val, err = load(ctx); err != nil {
			return User{}, err
		}
		if u, ok, err = decodeCachedUser(val); err != nil {
			return User{}, err
		}
	}
	if !ok {
		return User{}, plaza.Errorf(plaza.ENotFound, "no such user")
	}
	return u, nil
}

// decodeCachedUser reads an entry written by cachedUser's load: ok is false for a user
// known to be deleted.
func decodeCachedUser(val []byte) (u User, ok bool, err error) {
	if string(val) == deletedUser {
		return User{}, false, nil
	}
	if err := json.Unmarshal(val, &u); err != nil {
		return User{}, false, err
	}
	return u, true, nil
}

func (s *Service) currentRole(ctx context.Context, userID string) (plaza.Role, error) {
	u, err := s.cachedUser(ctx, userID)
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return "", plaza.Errorf(plaza.EUnauthenticated, "the user of this access token no longer exists")
	}
	return u.Role, err
}

// forgetUser drops the cached copy of a user who changed or was deleted.
func (s *Service) forgetUser(ctx context.Context, userID string) {
	if err := s.cache.Delete(ctx, userKey(userID)); err != nil {
		s.log.WarnContext(ctx, "users: dropping a cached user failed; it expires within a minute", "user_id", userID, "err", err)
	}
}

// issue starts a session: a new refresh token family and a token pair.
func (s *Service) issue(ctx context.Context, u User) (Tokens, error) {
	now := s.now()
	refresh, t := s.newRefresh(u.ID, plaza.NewID(), now)
	if err := s.refreshTokens.Create(ctx, t); err != nil {
		return Tokens{}, err
	}
	return s.tokens(u, t.Family, refresh, now)
}

// revokeFamily refuses every access token issued in a login from now on, on every instance,
// for as long as one can be valid. It fails open (logged) when the cache cannot store it,
// like the jti revocation list; the family's refresh tokens are gone from the database
// already, so the login ends within AccessTTL whatever happens.
func (s *Service) revokeFamily(ctx context.Context, family string) {
	if err := s.cache.Set(context.WithoutCancel(ctx), familyKey(family), []byte("1"), AccessTTL+Leeway); err != nil {
		s.log.WarnContext(ctx, "users: revoking a login's access tokens failed; they expire within 15 minutes", "err", err)
	}
}

// newRefresh makes a refresh token in family and the record under which it is stored.
func (s *Service) newRefresh(userID, family string, now time.Time) (string, RefreshToken) {
	token, hash := newRefreshToken()
	return token, RefreshToken{Hash: hash, Family: family, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.sessionLifetime)}
}

// tokens signs an access token for u and pairs it with refresh.
func (s *Service) tokens(u User, family, refresh string, now time.Time) (Tokens, error) {
	access, err := s.keys.signAccess(claims{
		Role:   u.Role,
		Family: family,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        plaza.NewID(),
		},
	})
	if err != nil {
		return Tokens{}, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(AccessTTL.Seconds())}, nil
}

// counter is one login failure counter: its key, the key of the flag set when it reaches
// its limit, the limit, and when its window ends.
type counter struct {
	count, blocked string
	prev           string  // the previous window's count
	prevShare      float64 // the part of the previous window within ThrottleWindow of now
	limit          int64
	ends           time.Time
	message        string // the client's explanation once the limit is reached
}

// newCounter returns the counter of the window now falls in, its keys the prefixes and
// the window's number. Windows are aligned to multiples of ThrottleWindow, so every
// instance agrees on them and Retry-After is exact.
func (s *Service) newCounter(count, blocked string, limit int64, message string) counter {
	now := s.now()
	size := int64(ThrottleWindow / time.Second)
	w := now.Unix() / size
	start := time.Unix(w*size, 0)
	win, prev := ":"+strconv.FormatInt(w, 10), ":"+strconv.FormatInt(w-1, 10)
	return counter{count: count + win, blocked: blocked + win, prev: count + prev,
		prevShare: 1 - float64(now.Sub(start))/float64(ThrottleWindow),
		limit:     limit, ends: start.Add(ThrottleWindow), message: message}
}

const tooManyLogins = "too many failed logins; retry after the time in Retry-After"

// loginCounters returns the email's counter first, then the client IP's when the
// transport put one in ctx. Emails are hashed: cache keys ride the bus in clear.
func (s *Service) loginCounters(ctx context.Context, email string) []counter {
	sum := sha256.Sum256([]byte(EmailKey(email)))
	email = hex.EncodeToString(sum[:16])
	cs := []counter{s.newCounter("auth:fail:email:"+email, "auth:block:email:"+email, MaxFailuresPerEmail, tooManyLogins)}
	if ip := plaza.ClientIPFrom(ctx); ip != "" {
		cs = append(cs, s.newCounter("auth:fail:ip:"+ip, "auth:block:ip:"+ip, MaxFailuresPerIP, tooManyLogins))
	}
	return cs
}

// registerCounters counts registrations per client IP in the same aligned windows: a 409
// tells whether an email has an account, so registration is limited like login.
func (s *Service) registerCounters(ctx context.Context) []counter {
	ip := plaza.ClientIPFrom(ctx)
	if ip == "" {
		return nil
	}
	return []counter{s.newCounter("auth:register:ip:"+ip, "auth:register-block:ip:"+ip, int64(s.registrationsPerIP),
		"too many registrations from this address; retry after the time in Retry-After")}
}

// throttled answers ERateLimited when a counter has reached its limit: the current
// window's blocked flag, or the previous window's count alone, weighed, at the limit (a
// flag ends with its window, while the estimate carries over). It reads the flags rather
// than the current counts: a flag only ever appears, so a local cache tier cannot serve a
// stale "not blocked" for it, as it could a count that is still growing; the previous
// window's count no longer grows.
func (s *Service) throttled(ctx context.Context, cs []counter) error {
	for _, c := range cs {
		if _, ok := s.cache.Get(ctx, c.blocked); ok {
			// Blocked to the window's end, and on into the next while this window's count
			// weighs enough there (a count read from a local tier may be low: then the
			// client is told too early, and told again).
			var n int64
			if v, ok := s.cache.Get(ctx, c.count); ok {
				n, _ = strconv.ParseInt(string(v), 10, 64)
			}
			return s.limited(c, underLimit(c.ends, n, c.limit)) // c.ends at the earliest
		}
		if n := s.previousCount(ctx, c); weigh(n, c.prevShare) >= c.limit {
			return s.limited(c, underLimit(c.ends.Add(-ThrottleWindow), n, c.limit))
		}
	}
	return nil
}

// limited is c's ERateLimited, to retry at until.
func (s *Service) limited(c counter, until time.Time) error {
	return &plaza.Error{Code: plaza.ERateLimited, RetryAfter: max(until.Sub(s.now()), time.Second), Message: c.message}
}

// underLimit is when a count of n in the window before the one starting at start weighs
// less than limit: n×share ≤ limit−1, share falling from 1 at start to 0 a window later.
func underLimit(start time.Time, n, limit int64) time.Time {
	if n < limit {
		return start
	}
	return start.Add(time.Duration(float64(ThrottleWindow) * (1 - float64(limit-1)/float64(n))))
}

// loginFailed counts an attempt against each counter. When the cache cannot count, nothing
// is blocked: the limit protects against guessing, and refusing every login while Redis is
// down would turn a cache outage into an outage of the whole site.
func (s *Service) loginFailed(ctx context.Context, cs []counter) {
	for _, c := range cs {
		// At least a second: the window may have ended during the password check, and a
		// TTL of zero or less would keep the flag for ever.
		left := max(c.ends.Sub(s.now()), time.Second)
		// Kept through the next window too, on whose count it weighs.
		n, err := s.cache.Incr(ctx, c.count, left+ThrottleWindow)
		if err != nil {
			s.log.WarnContext(ctx, "users: counting a failed login failed", "err", err)
			continue
		}
		if n < c.limit {
			n += weigh(s.previousCount(ctx, c), c.prevShare)
		}
		if n >= c.limit { // >=, not ==: a lost flag is set again by the next failure
			_ = s.cache.Set(ctx, c.blocked, []byte("1"), left)
		}
	}
}

// previousCount is the previous window's count. It no longer grows, so a local copy of it
// is as good.
func (s *Service) previousCount(ctx context.Context, c counter) int64 {
	v, ok := s.cache.Get(ctx, c.prev)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// weigh is a previous window's count n as it weighs now, when share of that window is
// still within ThrottleWindow, rounded up: 3 failures a second before the boundary still
// count 3 a second after it.
func weigh(n int64, share float64) int64 { return int64(math.Ceil(float64(n) * share)) }

func revokedKey(jti string) string { return "auth:revoked:" + jti }

func familyKey(family string) string { return "auth:revoked-family:" + family }

// sessionsKey marks the second from which a user's access tokens are valid again.
func sessionsKey(userID string) string { return "auth:sessions-since:" + userID }
func userKey(userID string) string     { return "auth:user:" + userID }
