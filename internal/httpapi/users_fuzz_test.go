package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// The fuzz targets send arbitrary bodies to every route that decodes one, through the
// whole chain and the real service: whatever arrives, the answer is a success or a 4xx
// problem body, never a 5xx or a panic, and never password material.
//
//	go test ./internal/httpapi -run '^$' -fuzz FuzzUserBodies -fuzztime 1m
//	go test ./internal/httpapi -run '^$' -fuzz FuzzAuthBodies -fuzztime 1m

var userBodySeeds = []string{
	`{"name":"Ann","email":"ann@example.com","password":"correct horse battery staple"}`,
	`{"name":"Ann","email":"ann@example.com","password":"correct horse battery staple","role":"admin"}`,
	`{"name":"Ann","email":"ann@example.com","password":"correct horse battery staple","role":"root"}`,
	`{"name":null,"email":null,"password":null,"role":null}`,
	`{"name":"","email":"@","password":"12345678"}`,
	`{"name":5}`, `{"email":["a"]}`, `{"role":{}}`, `{"password":true}`,
	`{"id":"x"}`, `{"created_at":"2000-01-01T00:00:00Z"}`, `{"nmae":"x"}`,
	`{"name":"Ann"} {}`, `{"name":"Ann"`, `{"name" "Ann"}`, `[]`, `"x"`, `null`, `1e999`, ``,
	`{"name":"\u0000\ud800","email":"a\"b@example.com"}`,
	`{"name":"` + strings.Repeat("é", 101) + `"}`,
	`{"password":"` + strings.Repeat("x", 129) + `"}`,
	`{"name":"Ann","name":"Bob"}`,
	`{"name":"Ann","email":"Ann <ann@example.com>"}`,
}

var authBodySeeds = []string{
	`{"email":"ann@example.com","password":"correct horse battery staple"}`,
	`{"email":"ann@example.com","password":"wrong"}`,
	`{"refresh_token":"` + strings.Repeat("A", 43) + `"}`,
	`{"refresh_token":""}`, `{"refresh_token":null}`, `{"refresh_token":1}`,
	`{"refresh_token":"x","extra":1}`, `{"email":{}}`, `{}`, `[]`, `null`, ``,
	`{"refresh_token":"x"} trailing`, `{"refresh_token":"\ud800"}`,
}

// userFuzzEnv is one SQLite-backed server for a fuzz target, with an account whose token
// the body-carrying routes that need one use.
type userFuzzEnv struct {
	e       *usersEnv
	id      string
	token   string
	refresh string
	ip      atomic.Int64
}

func newUserFuzzEnv(f *testing.F) *userFuzzEnv {
	e := newUsersEnv(f, storetest.Open(f, store.SQLite), nil)
	u := e.register(f, "Fuzz Owner")
	tok := e.login(f, u.Email)
	return &userFuzzEnv{e: e, id: u.ID, token: tok.AccessToken, refresh: tok.RefreshToken}
}

// send runs one request in-process. Each comes from its own client IP, so the login
// throttle does not turn every later input into the same 429.
func (fe *userFuzzEnv) send(t *testing.T, method, path string, auth bool, body []byte) {
	n := fe.ip.Add(1)
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n))
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+fe.token)
	}
	rec := httptest.NewRecorder()
	fe.e.srv.ServeHTTP(rec, req)
	res := rec.Result()
	b := rec.Body.Bytes()
	if res.StatusCode >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, path, body, res.StatusCode, b)
	}
	if bytes.Contains(b, []byte("$argon2")) || bytes.Contains(b, []byte(`"password_hash":`)) {
		t.Fatalf("%s %s: password material in %s", method, path, b)
	}
	if res.StatusCode >= 400 {
		var p problem
		if err := json.Unmarshal(b, &p); err != nil || p.Status != res.StatusCode || p.Code == "" {
			t.Fatalf("%s %s %q: %d with a body that is no problem: %s", method, path, body, res.StatusCode, b)
		}
	}
}

// fuzzRoute is one request a fuzzed body is sent to.
type fuzzRoute struct {
	method, path string
	auth         bool
}

// fuzzBodies sends every fuzzed body to one of routes (chosen by the fuzzer) and requires a
// 2xx or a 4xx problem body, never a 5xx.
func fuzzBodies(f *testing.F, seeds []string, routes func(fe *userFuzzEnv) []fuzzRoute) {
	n := uint8(len(routes(&userFuzzEnv{})))
	for _, s := range seeds {
		for route := range n {
			f.Add(route, []byte(s))
		}
	}
	fe := newUserFuzzEnv(f)
	rs := routes(fe)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := rs[route%n]
		fe.send(t, r.method, r.path, r.auth, body)
	})
}

func FuzzUserBodies(f *testing.F) {
	fuzzBodies(f, userBodySeeds, func(fe *userFuzzEnv) []fuzzRoute {
		return []fuzzRoute{
			{"POST", "/api/users", false},
			{"PUT", "/api/users/" + fe.id, true},
			{"PATCH", "/api/users/" + fe.id, true},
		}
	})
}

func FuzzAuthBodies(f *testing.F) {
	// A logout that succeeds revokes the token; later inputs then get 401s, still a 4xx.
	fuzzBodies(f, authBodySeeds, func(*userFuzzEnv) []fuzzRoute {
		return []fuzzRoute{
			{"POST", "/api/auth/login", false},
			{"POST", "/api/auth/refresh", false},
			{"POST", "/api/auth/logout", true},
		}
	})
}
