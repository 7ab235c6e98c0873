package users

import (
	"context"

	"plaza/internal/plaza"
)

// CheckSession tells a long-lived stream whether the session it was opened with still
// holds: the caller's access token was not revoked (logout) and the user still exists.
// Unlike Authenticate it does not need the token itself, which a stream opened with a
// ticket never had, nor does the token's expiry end the stream. EUnauthenticated when the
// session has ended.
func (s *Service) CheckSession(ctx context.Context) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if p.TokenID != "" {
		if _, revoked := s.cache.Get(ctx, revokedKey(p.TokenID)); revoked {
			return plaza.Errorf(plaza.EUnauthenticated, "the session was logged out")
		}
	}
	_, err = s.currentRole(ctx, p.UserID)
	return err
}
