package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
	"golang.org/x/crypto/argon2"

	"plaza/internal/plaza"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams are OWASP's recommended argon2id settings (19 MiB, 2 passes, 1 lane).
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// hasher hashes and verifies passwords. At most a few hashes run at once: each takes
// Params.Memory of RAM, so unbounded concurrent logins would be a memory exhaustion attack.
type hasher struct {
	params Params
	slots  chan struct{}
	// dummy is a hash of a random password, verified against when a login names an email
	// nobody has, so that a wrong email costs the same time as a wrong password.
	dummy string
	// derived counts argon2id runs, so tests can check the work a login does without timing it.
	derived atomic.Int64
}

func newHasher(p Params) (*hasher, error) {
	h := &hasher{params: p, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	dummy, err := h.hash(context.Background(), base64.RawURLEncoding.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// hash returns the PHC string of password: $argon2id$v=19$m=…,t=…,p=…$salt$key.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key, err := h.derive(ctx, password, salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verify reports whether password matches encoded, with the parameters encoded carries (so
// hashes made under older defaults keep verifying).
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got, err := h.derive(ctx, password, salt, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// derive waits for a slot, then runs argon2id.
func (h *hasher) derive(ctx context.Context, password string, salt []byte, p Params, n uint32) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, plaza.Wrap(plaza.EUnavailable, ctx.Err(), "the server is busy; retry later")
	}
	defer func() { <-h.slots }()
	h.derived.Add(1)
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, n), nil
}

var errBadHash = errors.New("users: stored password hash is not an argon2id PHC string")

func decodeHash(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
		return p, nil, nil, errBadHash
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// validatePassword checks length and guessability. A zxcvbn score of 0 means the password
// is on (or a trivial variation of) the lists attackers try first: common passwords,
// keyboard walks, sequences, repeats, dictionary words with digits appended, or the user's
// own name or email.
func validatePassword(p *plaza.Problems, password string, userInputs ...string) {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		p.Add("password", "must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		p.Add("password", "must be at most %d characters", MaxPasswordLen)
	case zxcvbn.PasswordStrength(password, userInputs).Score == 0:
		p.Add("password", "is too common or too easy to guess; choose a longer or less predictable one")
	}
}
