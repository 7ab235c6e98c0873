// Package securitytest is Plaza's security promise as tests: every class of attack an
// outside review tried, the ones that were found open (now closed) and the ones that held,
// each with the variants an attacker would try next. It drives the real REST transport over
// the real services on SQLite, through a real socket.
package securitytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/httpapi"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

const password = "correct horse battery staple"

var jwtKey = []byte("0123456789abcdef0123456789abcdef")

// site is one Plaza: the REST API over real services, as a client reaches it.
type site struct {
	url    string
	users  *users.Service
	probes *atomic.Int64
	seq    atomic.Int64
}

type options struct {
	metrics          httpapi.MetricsAccess
	metricsBearer    string
	authFailureBurst int
}

func newSite(t *testing.T, o options) *site {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	c := cache.New(cache.NewMemory(10_000), cache.Options{})
	t.Cleanup(func() { c.Close() })
	svc, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: c,
		Keys: [][]byte{jwtKey}, PasswordParams: users.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	products, err := catalog.New(catalog.Options{Store: db.Products()})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{users: svc, probes: new(atomic.Int64)}
	api := httpapi.New(httpapi.Options{
		Users: svc, Auth: svc, Catalog: cached.New(products, c, nil),
		RateLimit: 1000, RateBurst: 1000, MaxBodyBytes: 64 << 10,
		CORSOrigins: []string{"https://shop.example"},
		Metrics:     o.metrics, MetricsBearer: o.metricsBearer, AuthFailureBurst: o.authFailureBurst,
		Checks: []httpapi.Check{{Name: "store", Critical: true, Probe: func(ctx context.Context) error {
			s.probes.Add(1)
			return db.Ping(ctx)
		}}},
	})
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

type req struct {
	method, path, token, body string
	header                    map[string]string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (s *site) do(t *testing.T, r req) resp {
	t.Helper()
	hr, err := http.NewRequest(r.method, s.url+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// expect sends r and fails unless the status is want; a 4xx must be a problem body.
func (s *site) expect(t *testing.T, want int, r req) resp {
	t.Helper()
	got := s.do(t, r)
	if got.status != want {
		t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, got.status, got.body, want)
	}
	if want >= 400 && !strings.HasPrefix(got.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("%s %s: %d without a problem body: %s", r.method, r.path, got.status, got.body)
	}
	return got
}

type account struct {
	users.User
	access, refresh string
}

// register makes a user with a fresh email and logs them in; admin makes an admin.
func (s *site) register(t *testing.T, role plaza.Role) account {
	t.Helper()
	n := s.seq.Add(1)
	ctx := plaza.WithPrincipal(context.Background(), users.Operator)
	u, err := s.users.Register(ctx, users.NewUser{Name: fmt.Sprintf("User %d", n), Email: fmt.Sprintf("user%d@example.com", n), Password: password, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.users.Login(plaza.WithClientIP(context.Background(), fmt.Sprintf("198.51.100.%d", n%250)), u.Email, password)
	if err != nil {
		t.Fatal(err)
	}
	return account{User: u, access: tok.AccessToken, refresh: tok.RefreshToken}
}

func problemFields(t *testing.T, r resp) []string {
	t.Helper()
	var p struct {
		Errors []struct{ Field string } `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &p)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func productBody(name string) string {
	b, _ := json.Marshal(map[string]any{"name": name, "price_cents": 100, "category": "toys"})
	return string(b)
}

func jwtSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func encodeSegment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}
