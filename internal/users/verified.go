package users

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedTokens remembers access tokens whose signature and claims were verified, keyed
// by the token's SHA-256, so a client that sends the same token on every request pays for
// one JWT parse (base64, JSON, HMAC) per token rather than per request. An entry is only
// good until the token's own expiry; revocation (jti, family, password change) and the
// user's current role are still checked on every request by Authenticate. Tokens
// themselves are not kept, only their hashes.
type verifiedTokens struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]claims
}

// maxVerified bounds the memory: a claims value is a few hundred bytes, so 100,000
// entries cost a few tens of MB at most, and only with that many live clients.
const maxVerified = 100_000

func newVerifiedTokens(max int) *verifiedTokens {
	return &verifiedTokens{max: max, entries: make(map[[sha256.Size]byte]claims)}
}

// get returns the claims of a token verified before, unless it has expired since.
func (v *verifiedTokens) get(token string, now time.Time) (claims, bool) {
	key := sha256.Sum256([]byte(token))
	v.mu.Lock()
	c, ok := v.entries[key]
	v.mu.Unlock()
	if !ok || c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Add(Leeway)) {
		return claims{}, false
	}
	return c, true
}

// put remembers a verified token. When full, expired entries go first, then arbitrary
// ones: a dropped entry only costs its token one more parse.
func (v *verifiedTokens) put(token string, c claims, now time.Time) {
	key := sha256.Sum256([]byte(token))
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.entries) >= v.max {
		for k, e := range v.entries {
			if e.ExpiresAt == nil || !now.Before(e.ExpiresAt.Add(Leeway)) {
				delete(v.entries, k)
			}
		}
		for k := range v.entries {
			if len(v.entries) < v.max*3/4 {
				break
			}
			delete(v.entries, k)
		}
	}
	v.entries[key] = c
}

// decodedUsers keeps the last decoded form of each cached user record next to the bytes it
// came from: every authenticated request reads the user record (for the current role) and
// GET /api/users/me reads it again, and as long as the cache hands back the same bytes the
// decoded User is reused instead of decoding JSON each time. Changed bytes (the record was
// dropped and reloaded) are decoded afresh, so this can never serve a stale user.
type decodedUsers struct {
	max int

	mu      sync.Mutex
	entries map[string]decodedUser
}

type decodedUser struct {
	raw  []byte
	user User
	ok   bool
}

func newDecodedUsers(max int) *decodedUsers {
	return &decodedUsers{max: max, entries: make(map[string]decodedUser)}
}

func (d *decodedUsers) decode(userID string, raw []byte) (User, bool, error) {
	d.mu.Lock()
	e, hit := d.entries[userID]
	d.mu.Unlock()
	if hit && bytes.Equal(e.raw, raw) {
		return e.user, e.ok, nil
	}
	u, ok, err := decodeCachedUser(raw)
	if err != nil {
		return u, ok, err
	}
	d.mu.Lock()
	if len(d.entries) >= d.max {
		for k := range d.entries {
			if len(d.entries) < d.max*3/4 {
				break
			}
			delete(d.entries, k)
		}
	}
	d.entries[userID] = decodedUser{raw: bytes.Clone(raw), user: u, ok: ok}
	d.mu.Unlock()
	return u, ok, nil
}
