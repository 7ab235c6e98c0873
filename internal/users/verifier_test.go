package users_test

import (
	"context"
	"testing"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

// TestVerifierRefusesWhatAuthenticateRefuses: a process with only the keys and the
// security state (the gateway) accepts a live token and refuses a forged one, a logged-out
// one and one from a login that ended, as the service does.
func TestVerifierRefusesWhatAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	state := cache.New(cache.NewMemory(1000), cache.Options{})
	t.Cleanup(func() { state.Close() })
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	db := storetest.Open(t, store.SQLite)
	s, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: state, Keys: [][]byte{key}, PasswordParams: cheap})
	if err != nil {
		t.Fatal(err)
	}
	forger, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: state,
		Keys: [][]byte{[]byte("another key, another key, another key")}, PasswordParams: cheap})
	if err != nil {
		t.Fatal(err)
	}
	v, err := users.NewVerifier([][]byte{key}, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := s.Register(ctx, users.NewUser{Name: "Ann", Email: "ann@example.com", Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.Login(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Login(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok.AccessToken)
	if err != nil || c.UserID != u.ID || c.Role != plaza.RoleUser || c.TokenID == "" {
		t.Fatalf("live token: %+v %v", c, err)
	}
	if _, err := v.Verify(ctx, forged.AccessToken); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
		t.Fatalf("token signed with another key: %v", err)
	}
	p, err := s.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(plaza.WithPrincipal(ctx, p), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok.AccessToken); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
		t.Fatalf("logged-out token: %v", err)
	}
	if _, err := v.Verify(ctx, other.AccessToken); err != nil {
		t.Fatalf("the same user's other login must still verify: %v", err)
	}
	// Presenting the spent refresh token again ends that login: its family is revoked.
	if _, err := s.Refresh(ctx, other.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, other.RefreshToken); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := v.Verify(ctx, other.AccessToken); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
		t.Fatalf("token of an ended login: %v", err)
	}
}
