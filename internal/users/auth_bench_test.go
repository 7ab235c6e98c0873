package users_test

import (
	"context"
	"log/slog"
	"testing"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

// benchService is the users service on SQLite and an in-process cache, with one registered
// user whose password was hashed with params, and that user's password.
func benchService(b *testing.B, params users.Params) (*users.Service, string, string) {
	b.Helper()
	db := storetest.Open(b, store.SQLite)
	bs := bus.NewMemory(bus.MemoryOptions{})
	b.Cleanup(func() { bs.Close() })
	c := cache.New(cache.NewMemory(1000), cache.Options{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { c.Close() })
	s, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: c, Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, PasswordParams: params})
	if err != nil {
		b.Fatal(err)
	}
	const email, password = "bench@example.com", "correct horse battery staple"
	if _, err := s.Register(context.Background(), users.NewUser{Name: "Bench", Email: email, Password: password}); err != nil {
		b.Fatal(err)
	}
	return s, email, password
}

// BenchmarkAuthenticate is what every request with a bearer token pays: the HS256 JWT
// verified, the revocation list and the cached role looked up.
func BenchmarkAuthenticate(b *testing.B) {
	s, email, password := benchService(b, users.Params{Memory: 64, Time: 1, Threads: 1})
	ctx := context.Background()
	tok, err := s.Login(ctx, email, password)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin is POST /api/auth/login below the transport with the production password
// parameters (users.DefaultParams): one argon2id verification, a refresh token stored.
func BenchmarkLogin(b *testing.B) {
	s, email, password := benchService(b, users.DefaultParams)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Login(ctx, email, password); err != nil {
			b.Fatal(err)
		}
	}
}
