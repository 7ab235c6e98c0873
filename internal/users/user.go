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

	"plaza/internal/plaza"
)

// User is an account as every transport shows it. The password hash is not part of it: it
// only travels between the store and this package's login code.
type User struct {
	ID    string     `json:"id"`
	Name  string     `json:"name"`
	Email string     `json:"email,omitempty"` // empty when the caller may not see it
	Role  plaza.Role `json:"role"`

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
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		p.Add("name", "must not contain control characters")
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
	}
}

func validateRole(p *plaza.Problems, r plaza.Role) {
	if r != plaza.RoleUser && r != plaza.RoleAdmin {
		p.Add("role", "must be %q or %q", plaza.RoleUser, plaza.RoleAdmin)
	}
}

// NormalizeName trims surrounding white space, which is never part of a name.
func NormalizeName(name string) string { return strings.TrimSpace(name) }

// NormalizeEmail trims white space. Emails keep the case they were given in for display;
// EmailKey is what identifies them.
func NormalizeEmail(email string) string { return strings.TrimSpace(email) }

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
