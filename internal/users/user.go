// Package users holds the user domain and the services built on it: accounts (registration,
// reading, editing, deleting, listing) and authentication (password login, JWT access tokens,
// rotating refresh tokens, logout, login throttling). Every rule — validation, who may do
// what, which events a change publishes — lives here, so each transport (REST today,
// GraphQL, gRPC and WebSocket later) only decodes, calls a Service method and encodes.
package users

import (
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"plaza/internal/plaza"
)

// User is an account as every transport shows it. The password hash is not part of it: it
// only travels between the store and this package's login code.
type User struct {
	ID    string     `json:"id"`
	Name  string     `json:"name"`
	Email string     `json:"email,omitempty"` // empty when the caller may not see it
	Role  plaza.Role `json:"role"`
	// Version starts at 1 and grows by one on every write; it makes the ETag.
	Version int64 `json:"version"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Limits of the user fields.
const (
	MaxNameLen     = 100
	MaxEmailLen    = 254 // RFC 5321 path limit
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Validate checks the fields a client can set. Email is checked as given; NormalizeEmail
// gives the form that is stored.
func (u User) Validate() error {
	var p plaza.Problems
	u.check(&p)
	return p.Err()
}

func (u User) check(p *plaza.Problems) {
	validateName(p, u.Name)
	validateEmail(p, u.Email)
	validateRole(p, u.Role)
}

func validateName(p *plaza.Problems, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) == "":
		p.Add("name", "must not be empty")
	case n > MaxNameLen:
		p.Add("name", "must be at most %d characters, got %d", MaxNameLen, n)
	case plaza.TextProblem(name, false) != "":
		p.Add("name", "%s", plaza.TextProblem(name, false))
	}
}

func validateEmail(p *plaza.Problems, email string) {
	if email == "" {
		p.Add("email", "must not be empty")
		return
	}
	if len(email) > MaxEmailLen {
		p.Add("email", "must be at most %d bytes", MaxEmailLen)
		return
	}
	// ParseAddress also accepts display names, comments and angle brackets; only a bare
	// addr-spec that comes back unchanged is an email address here.
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		p.Add("email", "must be an email address like name@example.com")
		return
	}
	local, _, _ := strings.Cut(email, "@")
	if mixedScripts(local) {
		p.Add("email", "must not mix writing systems (such as Latin and Cyrillic) in the part before @")
	}
}

// scripts are the writing systems a mixed-script check tells apart: those whose letters
// are commonly confused with Latin ones, plus the largest others.
var scripts = []*unicode.RangeTable{
	unicode.Latin, unicode.Cyrillic, unicode.Greek, unicode.Armenian, unicode.Cherokee,
	unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Arabic,
	unicode.Hebrew, unicode.Devanagari, unicode.Thai,
}

// mixedScripts reports whether s has letters of more than one script, the shape of a
// look-alike address ("аnn" with a Cyrillic а) registered beside an existing one. Digits,
// punctuation and combining marks belong to no script here. Han, Hiragana and Katakana
// mix in ordinary Japanese, so they count as one.
func mixedScripts(s string) bool {
	seen := -1
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		for i, t := range scripts {
			if !unicode.Is(t, r) {
				continue
			}
			if i == 6 || i == 7 || i == 8 { // Han, Hiragana, Katakana
				i = 6
			}
			if seen >= 0 && seen != i {
				return true
			}
			seen = i
			break
		}
	}
	return false
}

func validateRole(p *plaza.Problems, r plaza.Role) {
	if r != plaza.RoleUser && r != plaza.RoleAdmin {
		p.Add("role", "must be %q or %q", plaza.RoleUser, plaza.RoleAdmin)
	}
}

// NormalizeName trims surrounding white space, which is never part of a name.
func NormalizeName(name string) string { return strings.TrimSpace(name) }

// NormalizeEmail trims white space, folds compatibility characters (NFKC: a fullwidth
// "ａ" is "a") and lower-cases the domain, which is case-insensitive everywhere. The local
// part keeps the case it was given in for display; EmailKey is what identifies it.
func NormalizeEmail(email string) string {
	email = norm.NFKC.String(strings.TrimSpace(email))
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		email = email[:at] + strings.ToLower(email[at:])
	}
	return email
}

// EmailKey is the case-insensitive identity of an email address: it is what the store keeps
// unique and looks logins up by. It is computed here, not in SQL, so that SQLite (whose
// lower() folds only ASCII) and PostgreSQL agree.
func EmailKey(email string) string { return strings.ToLower(NormalizeEmail(email)) }

// visibleTo returns u as p may see it: the email only for the user themself and admins.
func (u User) visibleTo(p plaza.Principal) User {
	if p.UserID != u.ID && !p.IsAdmin() {
		u.Email = ""
	}
	return u
}
