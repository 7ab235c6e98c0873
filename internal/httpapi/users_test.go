package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

// The users and auth routes are tested end to end: the real service over a real store
// (SQLite and PostgreSQL through storetest.Run), a memory cache and bus, an injected
// clock, and cheap argon2id parameters.

const userPassword = "correct horse battery staple"

var (
	userKey1 = []byte("first signing key, 32 bytes long!")
	userKey2 = []byte("second signing key, 32 bytes long")
)

// userClock is the service's clock; tests move it to expire tokens and throttle windows.
type userClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *userClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *userClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type usersEnv struct {
	db    *store.DB
	srv   *Server
	url   string
	svc   *users.Service
	clock *userClock
	seq   atomic.Int64
}

// newUsersEnv serves the users routes over db with the given JWT keys (first signs). Envs
// on one db and clock act like instances of one deployment.
func newUsersEnv(t testing.TB, db *store.DB, clock *userClock, keys ...[]byte) *usersEnv {
	t.Helper()
	if clock == nil {
		// Mid-window, so a test's few seconds never cross a throttle window boundary.
		clock = &userClock{t: time.Now().Truncate(users.ThrottleWindow).Add(users.ThrottleWindow / 2)}
	}
	if len(keys) == 0 {
		keys = [][]byte{userKey1}
	}
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	c := cache.New(cache.NewMemory(10_000), cache.Options{})
	t.Cleanup(func() { c.Close() })
	svc, err := users.New(users.Options{Users: db.Users(), Tokens: db.RefreshTokens(), Cache: c, Keys: keys, Now: clock.now,
		PasswordParams: users.Params{Memory: 64, Time: 1, Threads: 1}, RegistrationsPerIP: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Users: svc, Auth: svc})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &usersEnv{db: db, srv: srv, url: ts.URL, svc: svc, clock: clock}
}

// userReq is one request; body is sent as is (a string) or JSON-encoded.
type userReq struct {
	method, path, token string
	body                any
	contentType         string
}

// do sends r and returns the status and body. Every body is checked for password
// material: no response may ever carry a hash or echo a password.
func (e *usersEnv) do(t testing.TB, r userReq) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequest(r.method, e.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"$argon2", `"password_hash":`, `"password":`, userPassword} {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s %s: the response carries %q: %s", r.method, r.path, secret, b)
		}
	}
	if res.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("%s %s: 401 without a Bearer challenge", r.method, r.path)
	}
	return res, b
}

// expect sends r and fails unless the status is want; it returns the body.
func (e *usersEnv) expect(t testing.TB, want int, r userReq) []byte {
	t.Helper()
	res, b := e.do(t, r)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, res.StatusCode, b, want)
	}
	return b
}

// register creates a user with a unique email through the API.
func (e *usersEnv) register(t testing.TB, name string) users.User {
	t.Helper()
	email := fmt.Sprintf("%s.%d@example.com", strings.ToLower(strings.Fields(name)[0]), e.seq.Add(1))
	var u users.User
	decodeInto(t, e.expect(t, 201, userReq{method: "POST", path: "/api/users",
		body: map[string]string{"name": name, "email": email, "password": userPassword}}), &u)
	return u
}

// admin creates an admin through the service, as the bootstrap does.
func (e *usersEnv) admin(t testing.TB) users.User {
	t.Helper()
	email := fmt.Sprintf("admin.%d@example.com", e.seq.Add(1))
	if _, err := e.svc.EnsureAdmin(t.Context(), "Admin", email, userPassword); err != nil {
		t.Fatal(err)
	}
	u, _, err := e.db.Users().ByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *usersEnv) login(t testing.TB, email string) users.Tokens {
	t.Helper()
	var tok users.Tokens
	decodeInto(t, e.expect(t, 200, userReq{method: "POST", path: "/api/auth/login",
		body: map[string]string{"email": email, "password": userPassword}}), &tok)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 900 {
		t.Fatalf("token response %+v", tok)
	}
	return tok
}

func decodeInto(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func problemOf(t testing.TB, b []byte) problem {
	t.Helper()
	var p problem
	decodeInto(t, b, &p)
	return p
}

func usersTest(t *testing.T, fn func(t *testing.T, e *usersEnv)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		fn(t, newUsersEnv(t, db, nil))
	})
}

// TestUserRoutesByCaller is the table: every route × {anonymous, another user,
// the user themself, an admin}.
func TestUserRoutesByCaller(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		adminUser := e.admin(t)
		other := e.register(t, "Olga Other")

		type callers struct{ anon, other, self, admin int }
		routes := []struct {
			name string
			req  func(target users.User, tok users.Tokens) userReq
			want callers
		}{
			{"register", func(users.User, users.Tokens) userReq {
				return userReq{method: "POST", path: "/api/users", body: map[string]string{
					"name": "New", "email": fmt.Sprintf("new.%d@example.com", e.seq.Add(1)), "password": userPassword}}
			}, callers{201, 201, 201, 201}},
			{"me", func(users.User, users.Tokens) userReq {
				return userReq{method: "GET", path: "/api/users/me"}
			}, callers{401, 200, 200, 200}},
			{"get", func(u users.User, _ users.Tokens) userReq {
				return userReq{method: "GET", path: "/api/users/" + u.ID}
			}, callers{401, 200, 200, 200}},
			{"put", func(u users.User, _ users.Tokens) userReq {
				return userReq{method: "PUT", path: "/api/users/" + u.ID, body: map[string]string{"name": "Put Name", "email": u.Email}}
			}, callers{401, 403, 200, 200}},
			{"patch", func(u users.User, _ users.Tokens) userReq {
				return userReq{method: "PATCH", path: "/api/users/" + u.ID, body: `{"name":"Patched"}`, contentType: "application/merge-patch+json"}
			}, callers{401, 403, 200, 200}},
			{"delete", func(u users.User, _ users.Tokens) userReq {
				return userReq{method: "DELETE", path: "/api/users/" + u.ID}
			}, callers{401, 403, 204, 204}},
			{"list", func(users.User, users.Tokens) userReq {
				return userReq{method: "GET", path: "/api/users"}
			}, callers{401, 403, 403, 200}},
			{"login", func(u users.User, _ users.Tokens) userReq {
				return userReq{method: "POST", path: "/api/auth/login", body: map[string]string{"email": u.Email, "password": userPassword}}
			}, callers{200, 200, 200, 200}},
			{"refresh", func(_ users.User, tok users.Tokens) userReq {
				return userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok.RefreshToken}}
			}, callers{200, 200, 200, 200}},
			{"logout", func(_ users.User, tok users.Tokens) userReq {
				return userReq{method: "POST", path: "/api/auth/logout", body: map[string]string{"refresh_token": tok.RefreshToken}}
			}, callers{401, 204, 204, 204}},
		}
		for _, rt := range routes {
			for _, who := range []struct {
				name string
				want int
			}{{"anonymous", rt.want.anon}, {"other", rt.want.other}, {"self", rt.want.self}, {"admin", rt.want.admin}} {
				t.Run(rt.name+"/"+who.name, func(t *testing.T) {
					target := e.register(t, "Tess Target")
					// The caller's own session; anonymous callers hold the target's refresh
					// token without an access token.
					var callerTok users.Tokens
					switch who.name {
					case "anonymous":
						callerTok = e.login(t, target.Email)
						callerTok.AccessToken = ""
					case "other":
						callerTok = e.login(t, other.Email)
					case "self":
						callerTok = e.login(t, target.Email)
					case "admin":
						callerTok = e.login(t, adminUser.Email)
					}
					r := rt.req(target, callerTok)
					r.token = callerTok.AccessToken
					res, b := e.do(t, r)
					if res.StatusCode != who.want {
						t.Fatalf("%d %s, want %d", res.StatusCode, b, who.want)
					}
					if res.StatusCode >= 400 {
						decodeProblem(t, &http.Response{StatusCode: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(b))})
					}
					if (res.StatusCode == 200 || res.StatusCode == 201) && res.Header.Get("Cache-Control") != "no-store" {
						t.Fatalf("Cache-Control %q on a personal response", res.Header.Get("Cache-Control"))
					}
					// The email is shown to the user themself and admins only.
					if rt.name == "get" && res.StatusCode == 200 {
						var u map[string]any
						decodeInto(t, b, &u)
						_, shown := u["email"]
						if shown != (who.name != "other") || u["id"] != target.ID {
							t.Fatalf("%s sees %v", who.name, u)
						}
					}
					if rt.name == "delete" && res.StatusCode == 204 {
						e.expect(t, 404, userReq{method: "GET", path: "/api/users/" + target.ID, token: e.login(t, other.Email).AccessToken})
					}
				})
			}
		}
	})
}

func TestRegisterAndReadBack(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		res, b := e.do(t, userReq{method: "POST", path: "/api/users",
			body: map[string]string{"name": "  Ann Smith ", "email": "Ann.Smith@Example.com", "password": userPassword}})
		if res.StatusCode != 201 {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		var u map[string]any
		decodeInto(t, b, &u)
		if len(u) != 7 || u["version"] != 1.0 || u["name"] != "Ann Smith" || u["email"] != "Ann.Smith@example.com" || u["role"] != "user" {
			t.Fatalf("created user %v", u)
		}
		for _, f := range []string{"created_at", "updated_at"} {
			ts, err := time.Parse(time.RFC3339Nano, u[f].(string))
			if err != nil || ts.Location() != time.UTC || !strings.HasSuffix(u[f].(string), "Z") {
				t.Fatalf("%s %q is not RFC 3339 UTC", f, u[f])
			}
		}
		if res.Header.Get("Location") != "/api/users/"+u["id"].(string) {
			t.Fatalf("Location %q", res.Header.Get("Location"))
		}
		// Emails are compared case-insensitively: logging in and registering again.
		tok := e.login(t, "ann.smith@EXAMPLE.com")
		var me map[string]any
		decodeInto(t, e.expect(t, 200, userReq{method: "GET", path: res.Header.Get("Location"), token: tok.AccessToken}), &me)
		if fmt.Sprint(me) != fmt.Sprint(u) {
			t.Fatalf("read back %v, created %v", me, u)
		}
		p := problemOf(t, e.expect(t, 409, userReq{method: "POST", path: "/api/users",
			body: map[string]string{"name": "Ann Two", "email": "ANN.SMITH@example.com", "password": userPassword}}))
		if p.Code != plaza.EConflict || len(p.Errors) != 1 || p.Errors[0].Field != "email" {
			t.Fatalf("duplicate email: %+v", p)
		}
		// An unknown id is a 404 for anyone signed in.
		e.expect(t, 404, userReq{method: "GET", path: "/api/users/" + plaza.NewID(), token: tok.AccessToken})
	})
}

func TestUserValidationAndDecoding(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		bob := e.register(t, "Bob Jones")
		tok := e.login(t, ann.Email).AccessToken
		self := "/api/users/" + ann.ID
		cases := []struct {
			name   string
			req    userReq
			status int
			fields []string // field errors expected, in order
			detail string   // for 400s: a part of the detail naming the problem
		}{
			{"empty name", userReq{method: "POST", path: "/api/users", body: `{"name":"","email":"x@example.com","password":"` + userPassword + `"}`}, 422, []string{"name"}, ""},
			{"name too long", userReq{method: "POST", path: "/api/users", body: `{"name":"` + strings.Repeat("n", 101) + `","email":"x@example.com","password":"` + userPassword + `"}`}, 422, []string{"name"}, ""},
			{"bad email", userReq{method: "POST", path: "/api/users", body: `{"name":"X","email":"not-an-email","password":"` + userPassword + `"}`}, 422, []string{"email"}, ""},
			{"short password", userReq{method: "POST", path: "/api/users", body: `{"name":"X","email":"x@example.com","password":"Zq8#mL2"}`}, 422, []string{"password"}, ""},
			{"long password", userReq{method: "POST", path: "/api/users", body: `{"name":"X","email":"x@example.com","password":"` + strings.Repeat("Zq8#mL2v", 16) + `x"}`}, 422, []string{"password"}, ""},
			{"common password", userReq{method: "POST", path: "/api/users", body: `{"name":"X","email":"x@example.com","password":"password1"}`}, 422, []string{"password"}, ""},
			{"keyboard walk", userReq{method: "POST", path: "/api/users", body: `{"name":"X","email":"x@example.com","password":"qwertyuiop"}`}, 422, []string{"password"}, ""},
			{"everything wrong", userReq{method: "POST", path: "/api/users", body: `{"name":"","email":"@","password":"12345678"}`}, 422, []string{"name", "email", "password"}, ""},
			{"missing fields", userReq{method: "POST", path: "/api/users", body: `{}`}, 422, []string{"name", "email", "password"}, ""},
			{"malformed", userReq{method: "POST", path: "/api/users", body: `{"name":"X",`}, 400, nil, "ends in the middle"},
			{"syntax", userReq{method: "POST", path: "/api/users", body: `{"name" "X"}`}, 400, nil, "malformed JSON"},
			{"trailing data", userReq{method: "POST", path: "/api/users", body: `{"name":"X"} {}`}, 400, nil, "after the JSON value"},
			{"unknown field", userReq{method: "POST", path: "/api/users", body: `{"nmae":"X"}`}, 400, nil, `unknown field "nmae"`},
			{"wrong type", userReq{method: "POST", path: "/api/users", body: `{"name":5}`}, 400, nil, `field "name"`},
			{"not an object", userReq{method: "POST", path: "/api/users", body: `["X"]`}, 400, nil, "must be"},
			{"empty body", userReq{method: "POST", path: "/api/users", body: ``}, 400, nil, "empty"},
			{"wrong content type", userReq{method: "POST", path: "/api/users", body: `{}`, contentType: "text/plain"}, 400, nil, "Content-Type"},
			{"patch taken email", userReq{method: "PATCH", path: self, token: tok, body: `{"email":"` + strings.ToUpper(bob.Email) + `","current_password":"` + userPassword + `"}`}, 409, []string{"email"}, ""},
			{"patch null name", userReq{method: "PATCH", path: self, token: tok, body: `{"name":null}`}, 422, []string{"name"}, ""},
			{"patch bad email", userReq{method: "PATCH", path: self, token: tok, body: `{"email":"nope"}`}, 422, []string{"email"}, ""},
			{"patch weak password", userReq{method: "PATCH", path: self, token: tok, body: `{"password":"iloveyou"}`}, 422, []string{"password"}, ""},
			{"patch wrong type", userReq{method: "PATCH", path: self, token: tok, body: `{"name":["x"]}`}, 400, nil, `field "name"`},
			{"patch not an object", userReq{method: "PATCH", path: self, token: tok, body: `"x"`}, 400, nil, "must be"},
			{"put missing email", userReq{method: "PUT", path: self, token: tok, body: `{"name":"Ann"}`}, 422, []string{"email"}, ""},
			{"put taken email", userReq{method: "PUT", path: self, token: tok, body: `{"name":"Ann","email":"` + bob.Email + `","current_password":"` + userPassword + `"}`}, 409, []string{"email"}, ""},
			{"put unknown field", userReq{method: "PUT", path: self, token: tok, body: `{"name":"Ann","email":"` + ann.Email + `","admin":true}`}, 400, nil, `unknown field "admin"`},
			{"login missing password", userReq{method: "POST", path: "/api/auth/login", body: `{"email":"a@example.com"}`}, 422, []string{"password"}, ""},
			{"login wrong type", userReq{method: "POST", path: "/api/auth/login", body: `{"email":1,"password":"x"}`}, 400, nil, `field "email"`},
			{"login unknown field", userReq{method: "POST", path: "/api/auth/login", body: `{"email":"a@example.com","password":"x","remember":true}`}, 400, nil, `unknown field "remember"`},
			{"refresh empty", userReq{method: "POST", path: "/api/auth/refresh", body: `{}`}, 422, []string{"refresh_token"}, ""},
			{"refresh trailing", userReq{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"x"} {}`}, 400, nil, "after the JSON value"},
			{"logout empty", userReq{method: "POST", path: "/api/auth/logout", token: tok, body: `{}`}, 422, []string{"refresh_token"}, ""},
			{"list bad limit", userReq{method: "GET", path: "/api/users?limit=1000", token: tok}, 400, nil, "limit"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := problemOf(t, e.expect(t, c.status, c.req))
				var fields []string
				for _, f := range p.Errors {
					fields = append(fields, f.Field)
				}
				if c.fields != nil && fmt.Sprint(fields) != fmt.Sprint(c.fields) {
					t.Fatalf("field errors %+v, want %v", p.Errors, c.fields)
				}
				if !strings.Contains(p.Detail, c.detail) {
					t.Fatalf("detail %q does not name %q", p.Detail, c.detail)
				}
			})
		}
		// None of that changed Ann.
		var me users.User
		decodeInto(t, e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: tok}), &me)
		if me != ann {
			t.Fatalf("after refused edits: %+v, want %+v", me, ann)
		}
	})
}

// TestMassAssignment: fields a caller may not set are refused, never silently applied.
func TestMassAssignment(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		tok := e.login(t, ann.Email).AccessToken
		self := "/api/users/" + ann.ID
		for _, c := range []struct {
			req    userReq
			status int
		}{
			{userReq{method: "PATCH", path: self, token: tok, body: `{"role":"admin"}`}, 403},
			{userReq{method: "PUT", path: self, token: tok, body: `{"name":"Ann","email":"` + ann.Email + `","role":"admin"}`}, 403},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"role":null}`}, 403},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"id":"` + plaza.NewID() + `"}`}, 400},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"created_at":"2000-01-01T00:00:00Z"}`}, 400},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"updated_at":"2000-01-01T00:00:00Z","name":"Hacked"}`}, 400},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"password_hash":"$argon2id$x"}`}, 400},
			{userReq{method: "PATCH", path: self, token: tok, body: `{"email_key":"x@example.com"}`}, 400},
			{userReq{method: "POST", path: "/api/users", body: `{"name":"Eve","email":"eve@example.com","password":"` + userPassword + `","role":"admin"}`}, 403},
			{userReq{method: "POST", path: "/api/users", token: tok, body: `{"name":"Eve","email":"eve@example.com","password":"` + userPassword + `","role":"admin"}`}, 403},
			{userReq{method: "POST", path: "/api/users", body: `{"id":"` + ann.ID + `","name":"Eve","email":"eve@example.com","password":"` + userPassword + `"}`}, 400},
			{userReq{method: "POST", path: "/api/users", body: `{"created_at":"2000-01-01T00:00:00Z","name":"Eve","email":"eve@example.com","password":"` + userPassword + `"}`}, 400},
		} {
			e.expect(t, c.status, c.req)
		}
		var me users.User
		decodeInto(t, e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: tok}), &me)
		if me != ann {
			t.Fatalf("after mass assignment attempts: %+v, want %+v", me, ann)
		}
		if _, _, err := e.db.Users().ByEmail(t.Context(), "eve@example.com"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("a refused registration was stored: %v", err)
		}
		// Sending the role one already has is no change, so a user may PUT their own
		// representation back.
		e.expect(t, 200, userReq{method: "PUT", path: self, token: tok, body: `{"name":"Ann S.","email":"` + ann.Email + `","role":"user"}`})
		// An admin may set roles, also at registration.
		adminTok := e.login(t, e.admin(t).Email).AccessToken
		var made users.User
		decodeInto(t, e.expect(t, 201, userReq{method: "POST", path: "/api/users", token: adminTok,
			body: `{"name":"Eve","email":"eve@example.com","password":"` + userPassword + `","role":"admin"}`}), &made)
		if made.Role != plaza.RoleAdmin {
			t.Fatalf("admin-created admin has role %q", made.Role)
		}
	})
}

func TestEditsAndRoleChanges(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		tok := e.login(t, ann.Email)
		self := "/api/users/" + ann.ID
		e.clock.add(time.Second)

		var u users.User
		decodeInto(t, e.expect(t, 200, userReq{method: "PATCH", path: self, token: tok.AccessToken, contentType: "application/merge-patch+json",
			body: `{"name":"Ann B.","email":"Ann.B@Example.com","password":"another long passphrase","current_password":"` + userPassword + `"}`}), &u)
		if u.Name != "Ann B." || u.Email != "Ann.B@example.com" || u.Role != plaza.RoleUser || !u.CreatedAt.Equal(ann.CreatedAt) || !u.UpdatedAt.After(ann.UpdatedAt) {
			t.Fatalf("patched %+v from %+v", u, ann)
		}
		// The new password works and the old one does not.
		e.expect(t, 401, userReq{method: "POST", path: "/api/auth/login", body: map[string]string{"email": "ann.b@example.com", "password": userPassword}})
		// The change ended the session it was made from; a new login carries on.
		e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: tok.AccessToken})
		decodeInto(t, e.expect(t, 200, userReq{method: "POST", path: "/api/auth/login",
			body: map[string]string{"email": "ann.b@example.com", "password": "another long passphrase"}}), &tok)

		// A promotion and a demotion take effect on tokens already issued.
		adminTok := e.login(t, e.admin(t).Email).AccessToken
		e.expect(t, 403, userReq{method: "GET", path: "/api/users", token: tok.AccessToken})
		e.expect(t, 200, userReq{method: "PATCH", path: self, token: adminTok, body: `{"role":"admin"}`})
		e.expect(t, 200, userReq{method: "GET", path: "/api/users", token: tok.AccessToken})
		e.expect(t, 200, userReq{method: "PATCH", path: self, token: adminTok, body: `{"role":"user"}`})
		e.expect(t, 403, userReq{method: "GET", path: "/api/users", token: tok.AccessToken})
		// An admin edits anyone; an unknown id is a 404 for them, a 403 for a user.
		e.expect(t, 200, userReq{method: "PUT", path: self, token: adminTok, body: `{"name":"Ann C.","email":"ann.c@example.com"}`})
		e.expect(t, 404, userReq{method: "PATCH", path: "/api/users/" + plaza.NewID(), token: adminTok, body: `{"name":"X"}`})
		e.expect(t, 403, userReq{method: "PATCH", path: "/api/users/" + plaza.NewID(), token: tok.AccessToken, body: `{"name":"X"}`})
		e.expect(t, 404, userReq{method: "DELETE", path: "/api/users/" + plaza.NewID(), token: adminTok})
	})
}

func TestListUsersPaginates(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		adminTok := e.login(t, e.admin(t).Email).AccessToken
		for i := range 4 {
			e.register(t, fmt.Sprint("User ", i))
		}
		seen := map[string]bool{}
		path := "/api/users?limit=2"
		pages := 0
		for {
			var page struct {
				Items      []map[string]any `json:"items"`
				NextCursor string           `json:"next_cursor"`
			}
			decodeInto(t, e.expect(t, 200, userReq{method: "GET", path: path, token: adminTok}), &page)
			pages++
			for _, u := range page.Items {
				if seen[u["id"].(string)] || u["email"] == nil {
					t.Fatalf("page %d: repeated or email-less %v", pages, u)
				}
				seen[u["id"].(string)] = true
			}
			if page.NextCursor == "" {
				break
			}
			path = "/api/users?limit=2&cursor=" + page.NextCursor
		}
		if len(seen) != 5 || pages != 3 {
			t.Fatalf("%d users over %d pages, want 5 over 3", len(seen), pages)
		}
		p := problemOf(t, e.expect(t, 400, userReq{method: "GET", path: "/api/users?cursor=!!", token: adminTok}))
		if len(p.Errors) != 1 || p.Errors[0].Field != "cursor" {
			t.Fatalf("bad cursor: %+v", p)
		}
	})
}

func TestDeletingAUserEndsTheirSessions(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		adminTok := e.login(t, e.admin(t).Email).AccessToken
		for _, by := range []string{"self", "admin"} {
			u := e.register(t, "Del User")
			tok := e.login(t, u.Email)
			e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: tok.AccessToken})
			deleter := tok.AccessToken
			if by == "admin" {
				deleter = adminTok
			}
			e.expect(t, 204, userReq{method: "DELETE", path: "/api/users/" + u.ID, token: deleter})
			// Within the same second and long before the access token expires.
			p := problemOf(t, e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: tok.AccessToken}))
			if !strings.Contains(p.Detail, "no longer exists") {
				t.Fatalf("%s: %q", by, p.Detail)
			}
			e.expect(t, 401, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok.RefreshToken}})
			e.expect(t, 401, userReq{method: "POST", path: "/api/auth/login", body: map[string]string{"email": u.Email, "password": userPassword}})
		}
	})
}

// signToken signs claims with key as an attacker holding (or guessing) that key would.
func signToken(t *testing.T, method jwt.SigningMethod, key []byte, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tokenParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		decodeInto(t, b, v)
	}
	return header, claims
}

func TestAccessTokenVerification(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		tok := e.login(t, ann.Email).AccessToken
		header, claims := tokenParts(t, tok)
		if header["alg"] != "HS256" || header["kid"] == "" {
			t.Fatalf("header %v", header)
		}
		iat := int64(claims["iat"].(float64))
		if claims["iss"] != "plaza" || fmt.Sprint(claims["aud"]) != "[plaza-api]" || claims["sub"] != ann.ID || claims["role"] != "user" ||
			claims["jti"] == "" || int64(claims["exp"].(float64)) != iat+900 || iat != e.clock.now().Unix() {
			t.Fatalf("claims %v", claims)
		}
		kid := header["kid"].(string)
		now := e.clock.now()
		valid := func() jwt.MapClaims {
			return jwt.MapClaims{"iss": "plaza", "aud": "plaza-api", "sub": ann.ID, "role": "admin", "jti": plaza.NewID(),
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		}
		with := func(k string, v any) jwt.MapClaims {
			c := valid()
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		parts := strings.Split(tok, ".")
		flip := func(s string) string {
			b := []byte(s)
			b[len(b)/2] ^= 1
			return string(b)
		}
		escalated, _ := json.Marshal(map[string]any{"iss": "plaza", "aud": []string{"plaza-api"}, "sub": ann.ID, "role": "admin",
			"jti": claims["jti"], "iat": claims["iat"], "exp": claims["exp"]})
		noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))

		cases := []struct {
			name, token string
			want        int
		}{
			{"valid", tok, 200},
			{"forged with the real key", signToken(t, jwt.SigningMethodHS256, userKey1, kid, valid()), 200},
			{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), 401},
			{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString(escalated) + "." + parts[2], 401},
			{"alg none", noneHeader + "." + parts[1] + ".", 401},
			{"alg none with signature", noneHeader + "." + parts[1] + "." + parts[2], 401},
			{"HS512 with the real key", signToken(t, jwt.SigningMethodHS512, userKey1, kid, valid()), 401},
			{"unknown key", signToken(t, jwt.SigningMethodHS256, []byte("some other key of 32 bytes length"), kid, valid()), 401},
			{"no kid", signToken(t, jwt.SigningMethodHS256, userKey1, "", valid()), 401},
			{"unknown kid", signToken(t, jwt.SigningMethodHS256, userKey1, "nope", valid()), 401},
			{"wrong audience", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("aud", "other-api")), 401},
			{"no audience", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("aud", nil)), 401},
			{"wrong issuer", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("iss", "evil")), 401},
			{"no expiry", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("exp", nil)), 401},
			{"issued in the future", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("iat", now.Add(time.Hour).Unix())), 401},
			{"no subject", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("sub", nil)), 401},
			{"no jti", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("jti", nil)), 401},
			{"unknown subject", signToken(t, jwt.SigningMethodHS256, userKey1, kid, with("sub", plaza.NewID())), 401},
			{"not a JWT", "hello", 401},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var me map[string]any
				b := e.expect(t, c.want, userReq{method: "GET", path: "/api/users/me", token: c.token})
				if c.want == 200 {
					decodeInto(t, b, &me)
					if me["id"] != ann.ID {
						t.Fatalf("me = %v", me)
					}
				}
			})
		}
		// A forged role claim grants nothing: the role is the stored one.
		e.expect(t, 403, userReq{method: "GET", path: "/api/users", token: signToken(t, jwt.SigningMethodHS256, userKey1, kid, valid())})

		// Expiry: 15 minutes, with 30 seconds of leeway for clock skew.
		e.clock.add(15*time.Minute + 20*time.Second)
		e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: tok})
		e.clock.add(15 * time.Second)
		p := problemOf(t, e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: tok}))
		if !strings.Contains(p.Detail, "expired") {
			t.Fatalf("expired token: %q", p.Detail)
		}
	})
}

// TestKeyRotation: with PLAZA_JWT_SECRET="new,old" tokens signed with the old key keep
// verifying while new ones are signed with the new key; dropping the old key ends them.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, before *usersEnv) {
		ann := before.register(t, "Ann Smith")
		oldTok := before.login(t, ann.Email)
		rotated := newUsersEnv(t, before.db, before.clock, userKey2, userKey1)
		after := newUsersEnv(t, before.db, before.clock, userKey2)

		rotated.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: oldTok.AccessToken})
		// A refresh token is not a JWT: it survives rotation, and the new pair is signed
		// with the new key.
		var newTok users.Tokens
		decodeInto(t, rotated.expect(t, 200, userReq{method: "POST", path: "/api/auth/refresh",
			body: map[string]string{"refresh_token": oldTok.RefreshToken}}), &newTok)
		oldHeader, _ := tokenParts(t, oldTok.AccessToken)
		newHeader, _ := tokenParts(t, newTok.AccessToken)
		if oldHeader["kid"] == newHeader["kid"] {
			t.Fatal("the rotated instance still signs with the old key")
		}
		rotated.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: newTok.AccessToken})
		after.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: newTok.AccessToken})
		after.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: oldTok.AccessToken})
		before.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: newTok.AccessToken})
	})
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		refresh := func(token string) (int, users.Tokens, problem) {
			t.Helper()
			res, b := e.do(t, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": token}})
			var tok users.Tokens
			var p problem
			if res.StatusCode == 200 {
				decodeInto(t, b, &tok)
				if res.Header.Get("Cache-Control") != "no-store" {
					t.Fatal("token response may be cached")
				}
			} else {
				p = problemOf(t, b)
			}
			return res.StatusCode, tok, p
		}
		first := e.login(t, ann.Email)
		otherSession := e.login(t, ann.Email)

		// Rotation: each refresh spends its token and hands out a new pair.
		e.clock.add(time.Second)
		code, second, _ := refresh(first.RefreshToken)
		if code != 200 || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
			t.Fatalf("refresh: %d %+v", code, second)
		}
		e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: second.AccessToken})
		code, third, _ := refresh(second.RefreshToken)
		if code != 200 {
			t.Fatalf("second refresh: %d", code)
		}

		// Reuse of a spent token revokes the family, the newest token included.
		code, _, p := refresh(first.RefreshToken)
		if code != 401 || !strings.Contains(p.Detail, "already used") {
			t.Fatalf("reuse: %d %+v", code, p)
		}
		if code, _, _ := refresh(third.RefreshToken); code != 401 {
			t.Fatalf("newest token of a revoked family: %d", code)
		}
		if code, _, _ := refresh(second.RefreshToken); code != 401 {
			t.Fatalf("middle token of a revoked family: %d", code)
		}
		// Another login's family is untouched.
		code, fresh, _ := refresh(otherSession.RefreshToken)
		if code != 200 {
			t.Fatalf("other family: %d", code)
		}

		// Refresh tokens last 30 days.
		e.clock.add(30*24*time.Hour - time.Minute)
		code, fresh, _ = refresh(fresh.RefreshToken)
		if code != 200 {
			t.Fatalf("29 days later: %d", code)
		}
		e.clock.add(30*24*time.Hour + time.Second)
		if code, _, _ := refresh(fresh.RefreshToken); code != 401 {
			t.Fatalf("expired refresh token: %d", code)
		}
		for _, bad := range []string{"x", strings.Repeat("A", 43), base64.RawURLEncoding.EncodeToString(make([]byte, 32)), first.AccessToken} {
			if code, _, _ := refresh(bad); code != 401 {
				t.Fatalf("refresh %q: %d", bad, code)
			}
		}
	})
}

// TestConcurrentRefreshSpendsOnce: of simultaneous refreshes with one token one wins and
// the others count as reuse, which revokes the family, the winner's new token included.
func TestConcurrentRefreshSpendsOnce(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		tok := e.login(t, e.register(t, "Ann Smith").Email)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []users.Tokens
		for range 6 {
			wg.Go(func() {
				res, b := e.do(t, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok.RefreshToken}})
				if res.StatusCode == 200 {
					var next users.Tokens
					decodeInto(t, b, &next)
					mu.Lock()
					won = append(won, next)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("%d refreshes with one token succeeded, want 1", len(won))
		}
		e.expect(t, 401, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": won[0].RefreshToken}})
	})
}

func TestLogoutRevokesBothTokens(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		bob := e.register(t, "Bob Jones")
		a, b := e.login(t, ann.Email), e.login(t, ann.Email)
		bobTok := e.login(t, bob.Email)

		// Someone else's refresh token is not Ann's to revoke, and the answer does not say it
		// is live: it is a logout like any, which still ends the caller's access token.
		stray := e.login(t, ann.Email)
		e.expect(t, 204, userReq{method: "POST", path: "/api/auth/logout", token: stray.AccessToken, body: map[string]string{"refresh_token": bobTok.RefreshToken}})
		e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: stray.AccessToken})
		e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: bobTok.AccessToken})

		e.expect(t, 204, userReq{method: "POST", path: "/api/auth/logout", token: a.AccessToken, body: map[string]string{"refresh_token": a.RefreshToken}})
		p := problemOf(t, e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: a.AccessToken}))
		if !strings.Contains(p.Detail, "revoked") {
			t.Fatalf("logged-out access token: %q", p.Detail)
		}
		e.expect(t, 401, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.RefreshToken}})
		// The revoked token cannot log out again; Ann's other session is untouched.
		e.expect(t, 401, userReq{method: "POST", path: "/api/auth/logout", token: a.AccessToken, body: map[string]string{"refresh_token": a.RefreshToken}})
		e.expect(t, 200, userReq{method: "GET", path: "/api/users/me", token: b.AccessToken})
		e.expect(t, 200, userReq{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": bobTok.RefreshToken}})
		// Logging out with a refresh token already gone is still a logout.
		e.expect(t, 204, userReq{method: "POST", path: "/api/auth/logout", token: b.AccessToken, body: map[string]string{"refresh_token": a.RefreshToken}})
		e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: b.AccessToken})
	})
}

func TestWrongEmailAndWrongPasswordLookAlike(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		var details []string
		for _, body := range []map[string]string{
			{"email": ann.Email, "password": "wrong password here"},
			{"email": "nobody@example.com", "password": "wrong password here"},
		} {
			res, b := e.do(t, userReq{method: "POST", path: "/api/auth/login", body: body})
			p := problemOf(t, b)
			if res.StatusCode != 401 {
				t.Fatalf("%v: %d", body, res.StatusCode)
			}
			details = append(details, fmt.Sprint(p.Code, p.Detail, p.Errors, res.Header.Get("WWW-Authenticate")))
		}
		if details[0] != details[1] {
			t.Fatalf("wrong password %q differs from unknown email %q", details[0], details[1])
		}
	})
}

// TestLoginThrottlingAcrossAWindowBoundary: failures on both sides of a window boundary add
// up (fixed windows would let 2×limit−2 guesses straddle one), for the email's limit and the
// IP's alike; a quiet window later the owner logs in, and a success clears both windows.
func TestLoginThrottlingAcrossAWindowBoundary(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		login := func(email, password string) *http.Response {
			res, _ := e.do(t, userReq{method: "POST", path: "/api/auth/login", body: map[string]string{"email": email, "password": password}})
			return res
		}
		ann := e.register(t, "Ann Smith")
		toBoundary := func() { // to 2 s before the next boundary
			e.clock.add(e.clock.now().Truncate(users.ThrottleWindow).Add(users.ThrottleWindow - 2*time.Second).Sub(e.clock.now()))
		}
		toBoundary()
		for i := range users.MaxFailuresPerEmail {
			if i == 3 {
				e.clock.add(3 * time.Second) // into the next window
			}
			if res := login(ann.Email, "wrong password"); res.StatusCode != 401 {
				t.Fatalf("failure %d: %d", i, res.StatusCode)
			}
		}
		res := login(ann.Email, userPassword)
		if res.StatusCode != 429 {
			t.Fatalf("after %d failures straddling a boundary: %d", users.MaxFailuresPerEmail, res.StatusCode)
		}
		windowEnd := e.clock.now().Truncate(users.ThrottleWindow).Add(users.ThrottleWindow)
		if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra != int(windowEnd.Sub(e.clock.now()).Seconds()) {
			t.Fatalf("Retry-After %q, want %v", res.Header.Get("Retry-After"), windowEnd.Sub(e.clock.now()))
		}
		// Once the block ends, the owner logs in (the 2 failures of the blocked window do
		// not weigh enough to carry it over); that success clears the previous window's
		// count too, so four failures later she is not blocked.
		e.clock.add(windowEnd.Sub(e.clock.now()))
		if res := login(ann.Email, userPassword); res.StatusCode != 200 {
			t.Fatalf("after the block: %d", res.StatusCode)
		}
		for i := range users.MaxFailuresPerEmail - 1 {
			if res := login(ann.Email, "wrong password"); res.StatusCode != 401 {
				t.Fatalf("failure %d after a success: %d", i, res.StatusCode)
			}
		}
		if res := login(ann.Email, userPassword); res.StatusCode != 200 {
			t.Fatalf("4 failures after a success: %d", res.StatusCode)
		}

		// A block at a window's end carries over: 5 failures 2 s before the boundary, and a
		// second after it the right password is still refused, until 5 weigh 4.
		carol := e.register(t, "Carol Diaz")
		toBoundary()
		for range users.MaxFailuresPerEmail {
			login(carol.Email, "wrong password")
		}
		e.clock.add(3 * time.Second)
		res = login(carol.Email, userPassword)
		if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); res.StatusCode != 429 || ra != int((users.ThrottleWindow/5-time.Second).Seconds()) {
			t.Fatalf("a second into the next window: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
		}

		// Failures weigh on the next window in proportion to the part of their window
		// still within the last 15 minutes: 4 failures at a window's start count 1 three
		// quarters into the next, so the block comes with the 4th failure there, not the 1st.
		e.clock.add(e.clock.now().Truncate(users.ThrottleWindow).Add(users.ThrottleWindow).Sub(e.clock.now()))
		bob := e.register(t, "Bob Jones")
		for range 4 {
			login(bob.Email, "wrong password")
		}
		e.clock.add(users.ThrottleWindow + users.ThrottleWindow*3/4)
		for i := range 4 {
			if res := login(bob.Email, "wrong password"); res.StatusCode != 401 {
				t.Fatalf("failure %d three quarters into the next window: %d", i, res.StatusCode)
			}
		}
		if res := login(bob.Email, userPassword); res.StatusCode != 429 {
			t.Fatalf("4 failures and a quarter of 4 before them: %d", res.StatusCode)
		}
	})
}

func TestLoginThrottling(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		login := func(email, password string) (*http.Response, []byte) {
			return e.do(t, userReq{method: "POST", path: "/api/auth/login", body: map[string]string{"email": email, "password": password}})
		}
		ann := e.register(t, "Ann Smith")
		bob := e.register(t, "Bob Jones")

		// A success clears the email's count: 4 failures, a success, 4 failures is fine.
		for range 2 {
			for range users.MaxFailuresPerEmail - 1 {
				if res, _ := login(ann.Email, "wrong password"); res.StatusCode != 401 {
					t.Fatalf("failure below the limit: %d", res.StatusCode)
				}
			}
			if res, _ := login(ann.Email, userPassword); res.StatusCode != 200 {
				t.Fatalf("success below the limit: %d", res.StatusCode)
			}
		}
		// Five failures in the window block the email, even with the right password.
		for range users.MaxFailuresPerEmail {
			login(strings.ToUpper(ann.Email), "wrong password")
		}
		res, b := login(ann.Email, userPassword)
		if res.StatusCode != 429 || problemOf(t, b).Code != plaza.ERateLimited {
			t.Fatalf("after 5 failures: %d %s", res.StatusCode, b)
		}
		// Blocked to the window's end and on into the next, while 5 failures weigh 5 there:
		// until a fifth of it has passed (5×share ≤ 4).
		retry := e.clock.now().Truncate(users.ThrottleWindow).Add(users.ThrottleWindow + users.ThrottleWindow/5).Sub(e.clock.now())
		if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra != int(retry.Seconds()) {
			t.Fatalf("Retry-After %q, want %v", res.Header.Get("Retry-After"), retry)
		}
		// Other emails from the same IP are not blocked by Ann's.
		if res, _ := login(bob.Email, userPassword); res.StatusCode != 200 {
			t.Fatalf("another email: %d", res.StatusCode)
		}
		// A second before Retry-After ends Ann is still refused; then she may log in again.
		e.clock.add(retry - time.Second)
		if res, _ := login(ann.Email, userPassword); res.StatusCode != 429 {
			t.Fatalf("a second before Retry-After ended: %d", res.StatusCode)
		}
		e.clock.add(time.Second)
		if res, _ := login(ann.Email, userPassword); res.StatusCode != 200 {
			t.Fatalf("once Retry-After ended: %d", res.StatusCode)
		}

		// Twenty failures from one IP, over different emails, block that IP for every
		// email; a success in between does not reset the IP's count. (A window later, so
		// that the IP's failures above no longer weigh on its count.)
		e.clock.add(users.ThrottleWindow)
		for i := range users.MaxFailuresPerIP {
			if i == 10 {
				login(bob.Email, userPassword)
			}
			if res, _ := login(fmt.Sprintf("guess%d@example.com", i), "wrong password"); res.StatusCode != 401 {
				t.Fatalf("IP failure %d: %d", i, res.StatusCode)
			}
		}
		if res, _ := login(bob.Email, userPassword); res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("after 20 failures from one IP: %d", res.StatusCode)
		}
		e.clock.add(users.ThrottleWindow)
		if res, _ := login(bob.Email, userPassword); res.StatusCode != 200 {
			t.Fatalf("IP in the next window: %d", res.StatusCode)
		}
	})
}
