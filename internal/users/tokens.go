package users

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"plaza/internal/plaza"
)

// Access token claims and verification settings.
const (
	Issuer   = "plaza"
	Audience = "plaza-api"
	// Leeway absorbs clock skew between the instances that sign and verify.
	Leeway = 30 * time.Second

	AccessTTL  = 15 * time.Minute
	RefreshTTL = 30 * 24 * time.Hour
)

// Tokens is what a login or a refresh returns.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"` // seconds the access token is valid
}

// claims are the access token's: iss, aud, sub, exp, iat, jti and the user's role.
type claims struct {
	Role plaza.Role `json:"role"`
	// Family is the login (refresh token family) the token was issued in: revoking the
	// family, on logout or when a spent refresh token is presented again, revokes every
	// access token it issued.
	Family string `json:"fam,omitempty"`
	jwt.RegisteredClaims
}

// keyring holds the HMAC keys: the first signs, every one verifies, each known by its kid.
type keyring struct {
	signKID string
	sign    []byte
	verify  map[string][]byte
}

func newKeyring(keys [][]byte) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("users: at least one JWT signing key is required")
	}
	kr := &keyring{verify: make(map[string][]byte, len(keys))}
	for i, k := range keys {
		if len(k) == 0 {
			return nil, errors.New("users: empty JWT signing key")
		}
		id := kid(k)
		if i == 0 {
			kr.signKID, kr.sign = id, k
		}
		kr.verify[id] = k
	}
	return kr, nil
}

// kid names a key by a short hash of it, so a verifier picks the right key without trying
// each one and the key itself is never named. (A hash prefix reveals nothing an HMAC
// signature made with the same key does not.)
func kid(key []byte) string {
	sum := sha256.Sum256(append([]byte("plaza-jwt-kid:"), key...))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

func (kr *keyring) signAccess(c claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = kr.signKID
	return t.SignedString(kr.sign)
}

// parseAccess verifies an access token: HS256 only (so "none" and RS/ES confusion fail), a
// known kid, the signature, iss, aud, and exp/iat within the leeway.
func (kr *keyring) parseAccess(token string, now func() time.Time) (claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		id, _ := t.Header["kid"].(string)
		if k, ok := kr.verify[id]; ok {
			return k, nil
		}
		return nil, errors.New("unknown kid")
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return c, plaza.Wrap(plaza.EUnauthenticated, err, "the access token has expired; refresh it or log in again")
	case err != nil:
		return c, plaza.Wrap(plaza.EUnauthenticated, err, "the access token is invalid")
	case c.Subject == "" || c.ID == "":
		return c, plaza.Errorf(plaza.EUnauthenticated, "the access token is invalid")
	}
	return c, nil
}

// refreshTokenLen is the number of random bytes in a refresh token.
const refreshTokenLen = 32

// newRefreshToken returns a random opaque token and the hash under which it is stored.
func newRefreshToken() (token string, hash []byte) {
	b := make([]byte, refreshTokenLen)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashRefreshToken(b)
}

// parseRefreshToken returns the stored hash of a token a client presents.
func parseRefreshToken(token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != refreshTokenLen {
		return nil, errBadRefresh
	}
	return hashRefreshToken(b), nil
}

func hashRefreshToken(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

var errBadRefresh = plaza.Errorf(plaza.EUnauthenticated, "the refresh token is invalid, expired or revoked; log in again")

// DevKeyFile is the file in the data directory that keeps the generated development key.
const DevKeyFile = "jwt.key"

// DevKey returns the JWT key kept in dataDir/jwt.key, creating it (32 random bytes, mode
// 0600) on first use, so that tokens survive restarts of a development instance that has no
// PLAZA_JWT_SECRET. Production refuses to start without a configured secret.
func DevKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, DevKeyFile)
	if key, err := os.ReadFile(path); err == nil {
		if len(key) < 32 {
			return nil, errors.New("users: " + path + " is shorter than 32 bytes; delete it to generate a new key")
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// Written aside (CreateTemp makes it 0600), then linked into place: a process starting at the same moment either
	// sees no file or a complete one, and exactly one key wins.
	tmp, err := os.CreateTemp(dataDir, DevKeyFile+".*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return DevKey(dataDir)
	} else if err != nil {
		return nil, err
	}
	return key, nil
}
