package plaza

import "context"

// Role is what a user may do beyond their own things.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Principal is who makes a request, as proven by a credential.
type Principal struct {
	UserID  string
	Role    Role
	TokenID string // jti of the access token, for revocation
	// Family is the login the access token belongs to, and IssuedAt when it was issued
	// (Unix seconds): a long-lived stream rechecks them (users.CheckSession).
	Family   string `json:",omitempty"`
	IssuedAt int64  `json:",omitempty"`
}

// IsAdmin reports whether p may manage everyone.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != ""
}

// ClientIPKey is the context key of the client's IP: WithClientIP sets it, and a
// transport's own context type may answer it (a string) to carry the address without a
// context layer of its own.
type ClientIPKey struct{}

// WithClientIP returns ctx carrying the client's IP address as the transport determined it
// (behind trusted proxies, the forwarded one). Services use it for per-client limits.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ClientIPKey{}, ip)
}

// ClientIPFrom returns the client IP in ctx, or "" when the transport set none.
func ClientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(ClientIPKey{}).(string)
	return ip
}
