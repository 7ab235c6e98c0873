package users_test

import (
	"context"
	"encoding/json"
	"github.com/redis/go-redis/v9"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/plaza"
	"plaza/internal/redistest"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

var cheap = users.Params{Memory: 64, Time: 1, Threads: 1}

func newService(t *testing.T, db *store.DB, b bus.Bus, params users.Params) *users.Service {
	t.Helper()
	if b == nil {
		b = bus.NewMemory(bus.MemoryOptions{})
		t.Cleanup(func() { b.Close() })
	}
	// The store's relay publishes the events the service's writes store, as in Plaza.
	ctx, cancel := context.WithCancel(context.Background())
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		_ = db.RelayOutbox(ctx, b, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-relayed
	})
	c := cache.New(cache.NewMemory(1000), cache.Options{})
	t.Cleanup(func() { c.Close() })
	s, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: c, Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, PasswordParams: params})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnknownEmailCostsAsMuchAsAWrongPassword: a login for an email nobody has still runs
// one argon2id hash with the same parameters, so the response time does not tell which
// accounts exist. It counts the hashes rather than timing them, so a busy machine cannot
// make it flaky.
func TestUnknownEmailCostsAsMuchAsAWrongPassword(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s := newService(t, db, nil, cheap)
	ctx := context.Background()
	if _, err := s.Register(ctx, users.NewUser{Name: "Ann", Email: "ann@example.com", Password: "correct horse battery staple"}); err != nil {
		t.Fatal(err)
	}
	hashes := func(email string, i int) int64 {
		// A fresh IP each time keeps the throttle out of the count.
		ctx := plaza.WithClientIP(ctx, "192.0.2."+string(rune('1'+i)))
		before := s.PasswordDerivations()
		if _, err := s.Login(ctx, email, "wrong password"); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
			t.Fatalf("login %s: %v", email, err)
		}
		return s.PasswordDerivations() - before
	}
	known, unknown := hashes("ann@example.com", 0), hashes("nobody@example.com", 1)
	if known != 1 || unknown != 1 {
		t.Fatalf("argon2id runs: wrong password %d, unknown email %d; want 1 each", known, unknown)
	}
}

func TestEnsureAdminIsIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s := newService(t, db, nil, cheap)
		ctx := context.Background()
		created, err := s.EnsureAdmin(ctx, "Admin", "Root@Example.com", "correct horse battery staple")
		if err != nil || !created {
			t.Fatalf("first EnsureAdmin = %v, %v", created, err)
		}
		// Again, even with another case or password: nothing changes.
		created, err = s.EnsureAdmin(ctx, "Admin", "root@example.com", "another long passphrase")
		if err != nil || created {
			t.Fatalf("second EnsureAdmin = %v, %v", created, err)
		}
		tok, err := s.Login(ctx, "root@example.com", "correct horse battery staple")
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(ctx, tok.AccessToken)
		if err != nil || p.Role != plaza.RoleAdmin {
			t.Fatalf("bootstrapped admin: %+v %v", p, err)
		}
		// A weak configured password is refused like any other.
		if _, err := s.EnsureAdmin(ctx, "Admin", "other@example.com", "password"); plaza.ErrorCodeOf(err) != plaza.EInvalid {
			t.Fatalf("weak admin password: %v", err)
		}
	})
}

// TestEventsCarryIDAndNameOnly: created, updated and deleted are published with the
// actor, and no email or hash rides the bus.
func TestEventsCarryIDAndNameOnly(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	s := newService(t, db, b, cheap)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, plaza.StreamUsers, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	u, err := s.Register(ctx, users.NewUser{Name: "Ann", Email: "ann@example.com", Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	self := plaza.WithPrincipal(ctx, plaza.Principal{UserID: u.ID, Role: plaza.RoleUser})
	name := "Ann B."
	if _, err := s.Update(self, u.ID, plaza.Expect{}, users.Changes{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(self, u.ID, plaza.Expect{}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ typ, actor, name string }{
		{users.EventCreated, "", "Ann"},
		{users.EventUpdated, u.ID, "Ann B."},
		{users.EventDeleted, u.ID, "Ann B."},
	}
	for _, w := range want {
		select {
		case ev := <-sub.Events():
			var data map[string]any
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			if ev.Type != w.typ || ev.ActorID != w.actor || len(data) != 2 || data["id"] != u.ID || data["name"] != w.name {
				t.Fatalf("event %+v %s, want %s by %q with id and name %q only", ev, ev.Data, w.typ, w.actor, w.name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", w.typ)
		}
	}
}

func TestDevKeyIsCreatedOnceAndKept(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := users.DevKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 32 || string(k) != string(keys[0]) {
			t.Fatalf("concurrent first uses got different keys: %x vs %x", k, keys[0])
		}
	}
	fi, err := os.Stat(filepath.Join(dir, users.DevKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := users.DevKey(dir)
	if err != nil || string(again) != string(keys[0]) {
		t.Fatalf("key not reused: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := os.WriteFile(filepath.Join(dir, users.DevKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DevKey(dir); err == nil || !strings.Contains(err.Error(), "shorter than 32 bytes") {
		t.Fatalf("truncated key file: %v", err)
	}
}

// TestLogoutWithTheCacheDownSaysSo: when the revocation cannot be stored, logout answers
// unavailable instead of 204, so the client knows its access token still works; a retry
// once the cache is back revokes it.
func TestLogoutWithTheCacheDownSaysSo(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	opts, err := cache.ParseRedisURL(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	c := cache.New(cache.NewRedis(client, "test:"), cache.Options{})
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	db := storetest.Open(t, store.SQLite)
	s, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: c,
		Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, PasswordParams: cheap})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Register(ctx, users.NewUser{Name: "Ann", Email: "ann@example.com", Password: "correct horse battery staple"}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	rs.Kill()
	if err := s.Logout(plaza.WithPrincipal(ctx, p), tok.RefreshToken); plaza.ErrorCodeOf(err) != plaza.EUnavailable {
		t.Fatalf("logout with the cache down = %v, want unavailable", err)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Logout(plaza.WithPrincipal(ctx, p), tok.RefreshToken)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logout after the cache returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Authenticate(ctx, tok.AccessToken); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
		t.Fatalf("access token after logout: %v", err)
	}
}

// TestStreamsEndWithTheirLogin: a long-lived stream rechecks the session it was opened
// with (CheckSession) and finds it ended exactly when a request with its token would be
// refused: its login ended elsewhere or by a reused refresh token, the password changed,
// or the account's role changed. Another login of the same user goes on.
func TestStreamsEndWithTheirLogin(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s := newService(t, db, nil, cheap)
	ctx := t.Context()
	const password = "plaza stream check 7 horses"
	u, err := s.Register(ctx, users.NewUser{Name: "Stream", Email: "stream@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	// stream opens a stream with a fresh login and returns the context it runs with.
	stream := func() (context.Context, users.Tokens) {
		t.Helper()
		tok, err := s.Login(ctx, "stream@example.com", password)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		sctx := plaza.WithPrincipal(ctx, p)
		if err := s.CheckSession(sctx); err != nil {
			t.Fatalf("a stream just opened is refused: %v", err)
		}
		return sctx, tok
	}
	ended := func(sctx context.Context, why string) {
		t.Helper()
		if err := s.CheckSession(sctx); plaza.ErrorCodeOf(err) != plaza.EUnauthenticated {
			t.Fatalf("after %s the stream's session check gave %v, want unauthenticated", why, err)
		}
	}

	kept, _ := stream()
	loggedOut, tok := stream()
	if err := s.Logout(loggedOut, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	ended(loggedOut, "a logout with its refresh token")

	reused, tok := stream()
	if _, err := s.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, tok.RefreshToken); err == nil {
		t.Fatal("a refresh token was accepted twice")
	}
	ended(reused, "its refresh token was reused")
	if err := s.CheckSession(kept); err != nil {
		t.Fatalf("another login's stream ended with these: %v", err)
	}

	admin := plaza.WithPrincipal(ctx, plaza.Principal{UserID: "0000000000000000000000admin", Role: plaza.RoleAdmin})
	promoted, _ := stream()
	role := plaza.RoleAdmin
	if _, err := s.Update(admin, u.ID, plaza.Expect{}, users.Changes{Role: &role}); err != nil {
		t.Fatal(err)
	}
	ended(promoted, "a role change")

	changed, _ := stream()
	// Tokens carry whole seconds: a change in the second they were issued would not end them.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	newPassword, current := "another plaza passphrase 9 owls", password
	self := plaza.WithPrincipal(ctx, plaza.Principal{UserID: u.ID, Role: plaza.RoleAdmin})
	if _, err := s.Update(self, u.ID, plaza.Expect{}, users.Changes{Password: &newPassword, CurrentPassword: &current}); err != nil {
		t.Fatal(err)
	}
	ended(changed, "a password change")
	ended(kept, "a password change")
}
