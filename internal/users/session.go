package users

import (
	"context"

	"plaza/internal/plaza"
)

// CheckSession tells a long-lived stream whether the session it was opened with still
// holds: its access token was not revoked (logout), its login did not end (a logout
// elsewhere, a reused refresh token), the password was not changed since, the user still
// exists and still has the role the stream was opened with. Unlike Authenticate it does
// not need the token itself, which a stream opened with a ticket never had, nor does the
// token's expiry end the stream. EUnauthenticated when the session has ended.
func (s *Service) CheckSession(ctx context.Context) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	c := Claims{UserID: p.UserID, TokenID: p.TokenID, Family: p.Family, IssuedAt: p.IssuedAt}
	if err := checkRevoked(ctx, s.cache, c); err != nil {
		return err
	}
	role, err := s.currentRole(ctx, p.UserID)
	if err != nil {
		return err
	}
	if role != p.Role {
		return plaza.Errorf(plaza.EUnauthenticated, "the account's role changed; sign in again")
	}
	return nil
}
