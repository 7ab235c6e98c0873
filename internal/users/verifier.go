package users

import (
	"context"
	"strconv"
	"time"

	"plaza/internal/plaza"
)

// StateReader reads the security state that every instance writes: revoked token IDs,
// revoked login families and password-change marks. cache.Cache implements it; so does
// any reader of the same keys under the same prefix (plaza:state: in Redis).
type StateReader interface {
	// GetMany returns the values of keys (vals[i] and ok[i] are keys[i]'s), in one round
	// trip where the state is remote.
	GetMany(ctx context.Context, keys ...string) (vals [][]byte, ok []bool)
}

// Claims are what a verified access token says about its holder.
type Claims struct {
	UserID  string
	Role    plaza.Role // the role when the token was issued; the service rechecks the stored one
	TokenID string
	Family  string // the login (refresh token family) the token was issued in
	// IssuedAt is when the token was issued, in Unix seconds (0: unknown).
	IssuedAt int64
}

// Verifier checks access tokens the way Authenticate does, minus the look-up of the
// user's current record, so that a process without the users store (plaza gateway)
// refuses exactly the tokens the instances would: same keys, same claims, same
// revocation list. It is safe for concurrent use.
type Verifier struct {
	keys     *keyring
	state    StateReader
	now      func() time.Time
	verified *verifiedTokens
}

// NewVerifier verifies with keys (the first signs elsewhere; every one verifies here) and
// reads revocations from state. now is the clock (nil: time.Now).
func NewVerifier(keys [][]byte, state StateReader, now func() time.Time) (*Verifier, error) {
	kr, err := newKeyring(keys)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: kr, state: state, now: now, verified: newVerifiedTokens(maxVerified)}, nil
}

// Verify checks the token's signature and claims, then that it has not been revoked by a
// logout (its jti), by the end of its login (its family) or by a password change since it
// was issued. Every refusal is EUnauthenticated. While the state cannot be read (Redis
// down) the revocation checks fail open, as they do on the instances.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	now := v.now()
	c, ok := v.verified.get(token, now)
	if !ok {
		var err error
		if c, err = v.keys.parseAccess(token, v.now); err != nil {
			return Claims{}, err
		}
		v.verified.put(token, c, now)
	}
	var iat int64
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Unix()
	}
	cl := Claims{UserID: c.Subject, Role: c.Role, TokenID: c.ID, Family: c.Family, IssuedAt: iat}
	if err := checkRevoked(ctx, v.state, cl); err != nil {
		return Claims{}, err
	}
	return cl, nil
}

// checkRevoked tells whether the session c belongs to has ended: its token was revoked by
// a logout (jti), its login ended (family: a logout elsewhere, a reused refresh token), or
// the password changed after it was issued. The three marks are read in one round trip.
// While the state cannot be read they are absent: revocation fails open, as documented.
func checkRevoked(ctx context.Context, state StateReader, c Claims) error {
	keys := []string{sessionsKey(c.UserID)}
	if c.TokenID != "" {
		keys = append(keys, revokedKey(c.TokenID))
	}
	if c.Family != "" {
		keys = append(keys, familyKey(c.Family))
	}
	vals, found := state.GetMany(ctx, keys...)
	for i, key := range keys[1:] {
		if !found[i+1] {
			continue
		}
		if key == revokedKey(c.TokenID) {
			return plaza.Errorf(plaza.EUnauthenticated, "the access token has been revoked; log in again")
		}
		return plaza.Errorf(plaza.EUnauthenticated, "the login this token belongs to has ended; log in again")
	}
	if found[0] {
		// The password changed: tokens issued before that second are ended. (A token issued
		// in the same second, just before the change, slips through: iat has whole seconds.)
		if since, err := strconv.ParseInt(string(vals[0]), 10, 64); err == nil && c.IssuedAt > 0 && c.IssuedAt < since {
			return plaza.Errorf(plaza.EUnauthenticated, "the password was changed after this token was issued; log in again")
		}
	}
	return nil
}
