package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"plaza/internal/redistest"
	"plaza/internal/store/storetest"
)

const strongPassword = "correct horse battery staple"

// apiJSON sends a JSON request to a running instance and returns the status and body.
func apiJSON(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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
	return res.StatusCode, b
}

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// signIn logs email in on the instance at url.
func signIn(t *testing.T, url, email, password string) tokenPair {
	t.Helper()
	code, b := apiJSON(t, "POST", url+"/api/auth/login", "", `{"email":"`+email+`","password":"`+password+`"}`)
	var tok tokenPair
	if code != 200 || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("login %s: %d %s", email, code, b)
	}
	return tok
}

// withDialects runs fn on SQLite (a data directory) and on PostgreSQL (a fresh database;
// skipped without PLAZA_TEST_POSTGRES_URL, failed under CI).
func withDialects(t *testing.T, fn func(t *testing.T, env map[string]string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, map[string]string{"PLAZA_DATA_DIR": t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, map[string]string{"PLAZA_DATA_DIR": t.TempDir(), "DATABASE_URL": storetest.PostgresURL(t)})
	})
}

// plazaCmd runs one plaza command to completion with env and stdin.
func plazaCmd(env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"plaza"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	withDialects(t, func(t *testing.T, env map[string]string) {
		out, logs, err := plazaCmd(env, strongPassword+"\n", "user", "create", "--email", "Ada@Example.com", "--name=Ada Lovelace", "--admin", "--password-stdin")
		if err != nil || !strings.HasPrefix(out, "created admin Ada Lovelace <Ada@example.com> with id ") {
			t.Fatalf("create: %v %q\n%s", err, out, logs)
		}
		if _, _, err := plazaCmd(env, "another long passphrase\r\n", "user", "create", "--email", "bob@example.com", "--name", "Bob", "--password-stdin"); err != nil {
			t.Fatalf("create without --admin: %v", err)
		}
		for _, c := range []struct {
			name, stdin string
			args        []string
			exit        int
			says        string
		}{
			{"taken email", strongPassword + "\n", []string{"--email", "ADA@example.com", "--name", "Ada", "--password-stdin"}, 1, "already exists"},
			{"weak password", "password1\n", []string{"--email", "c@example.com", "--name", "C", "--password-stdin"}, 2, "password is too common"},
			{"bad email", strongPassword + "\n", []string{"--email", "nope", "--name", "C", "--password-stdin"}, 2, "email must be an email address"},
			{"no name", strongPassword + "\n", []string{"--email", "c@example.com", "--password-stdin"}, 2, "--email and --name"},
			{"empty password", "\n", []string{"--email", "c@example.com", "--name", "C", "--password-stdin"}, 2, "empty password"},
			{"no terminal", strongPassword + "\n", []string{"--email", "c@example.com", "--name", "C"}, 2, "--password-stdin"},
			{"bad bool", "", []string{"--email", "c@example.com", "--name", "C", "--admin=yes"}, 2, "invalid boolean value \"yes\" for -admin"},
			{"unknown setting", "", []string{"--email", "c@example.com", "--name", "C", "--colour", "red"}, 2, "colour"},
		} {
			_, _, err := plazaCmd(env, c.stdin, append([]string{"user", "create"}, c.args...)...)
			if err == nil || exitCode(err) != c.exit || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s: %v (exit %d), want exit %d saying %q", c.name, err, exitCode(err), c.exit, c.says)
			}
		}

		out, _, err = plazaCmd(env, "", "user", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "EMAIL") ||
			!strings.Contains(lines[1], "Ada@example.com") || !strings.Contains(lines[1], "admin") ||
			!strings.Contains(lines[2], "bob@example.com") || !strings.Contains(lines[2], " user ") {
			t.Fatalf("list: %v\n%s", err, out)
		}
		if strings.Contains(out, "argon2") {
			t.Fatal("list shows password hashes")
		}

		// The server on the same database lets the admin in, as an admin.
		in := start(t, env)
		tok := signIn(t, in.URL, "ada@example.com", strongPassword)
		if code, b := apiJSON(t, "GET", in.URL+"/api/users", tok.AccessToken, ""); code != 200 || !strings.Contains(string(b), "bob@example.com") {
			t.Fatalf("admin list over HTTP: %d %s", code, b)
		}
	})
}

func TestUserCommandUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"user"}, {"user", "rename"}, {"user", "create", "--email"}} {
		if _, _, err := plazaCmd(nil, "", args...); exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	out, _, err := plazaCmd(nil, "", "user", "create", "--help")
	if err != nil || !strings.Contains(out, "--password-stdin") || !strings.Contains(out, "DATABASE_URL") {
		t.Fatalf("help: %v %q", err, out)
	}
	if out, _, _ := plazaCmd(nil, "", "help"); !strings.Contains(out, "user create") {
		t.Fatalf("plaza help does not list the user command: %q", out)
	}
}

// TestAuthFlowAndRestart runs the "done when" on a real instance: the admin from
// PLAZA_ADMIN_*, a user registering, logging in, reading and editing themself, refreshing,
// logging out. Restarted on the same data (no PLAZA_JWT_SECRET: the development key is
// kept in the data directory), tokens issued before still verify and the admin is not
// created twice.
func TestAuthFlowAndRestart(t *testing.T) {
	t.Parallel()
	withDialects(t, func(t *testing.T, env map[string]string) {
		env["PLAZA_ADMIN_EMAIL"] = "root@example.com"
		env["PLAZA_ADMIN_PASSWORD"] = strongPassword
		env["PLAZA_RATE_LIMIT"] = "0"
		in := start(t, env)
		u := in.URL

		code, b := apiJSON(t, "POST", u+"/api/users", "", `{"name":"Ann","email":"ann@example.com","password":"`+strongPassword+`"}`)
		var ann struct{ ID, Email, Role string }
		if code != 201 || json.Unmarshal(b, &ann) != nil || ann.Role != "user" {
			t.Fatalf("register: %d %s", code, b)
		}
		tok := signIn(t, u, "ann@example.com", strongPassword)
		if code, b := apiJSON(t, "PATCH", u+"/api/users/"+ann.ID, tok.AccessToken, `{"name":"Ann B."}`); code != 200 || !strings.Contains(string(b), "Ann B.") {
			t.Fatalf("edit self: %d %s", code, b)
		}
		admin := signIn(t, u, "root@example.com", strongPassword)
		var adminMe struct{ ID, Role string }
		_, b = apiJSON(t, "GET", u+"/api/users/me", admin.AccessToken, "")
		if json.Unmarshal(b, &adminMe) != nil || adminMe.Role != "admin" {
			t.Fatalf("bootstrap admin: %s", b)
		}
		if code, _ := apiJSON(t, "PATCH", u+"/api/users/"+adminMe.ID, tok.AccessToken, `{"name":"Mallory"}`); code != 403 {
			t.Fatalf("user edits the admin: %d", code)
		}
		code, b = apiJSON(t, "POST", u+"/api/auth/refresh", "", `{"refresh_token":"`+tok.RefreshToken+`"}`)
		var next tokenPair
		if code != 200 || json.Unmarshal(b, &next) != nil {
			t.Fatalf("refresh: %d %s", code, b)
		}
		if code, _ := apiJSON(t, "POST", u+"/api/auth/logout", next.AccessToken, `{"refresh_token":"`+next.RefreshToken+`"}`); code != 204 {
			t.Fatalf("logout: %d", code)
		}
		if code, _ := apiJSON(t, "GET", u+"/api/users/me", next.AccessToken, ""); code != 401 {
			t.Fatalf("access token after logout: %d", code)
		}

		if err := in.stop(t); err != nil {
			t.Fatal(err)
		}
		in = start(t, env)
		if code, _ := apiJSON(t, "GET", in.URL+"/api/users/me", admin.AccessToken, ""); code != 200 {
			t.Fatalf("token from before the restart: %d", code)
		}
		_, b = apiJSON(t, "GET", in.URL+"/api/users", admin.AccessToken, "")
		if n := strings.Count(string(b), `"role":"admin"`); n != 1 {
			t.Fatalf("%d admins after a restart, want 1: %s", n, b)
		}
	})
}

func TestWeakBootstrapPasswordStopsStart(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PLAZA_DATA_DIR": t.TempDir(), "PLAZA_HTTP_ADDR": "127.0.0.1:0", "PLAZA_ADMIN_EMAIL": "root@example.com", "PLAZA_ADMIN_PASSWORD": "password"}
	_, _, err := plazaCmd(env, "", "serve")
	if err == nil || exitCode(err) != 2 || !strings.HasPrefix(err.Error(), "PLAZA_ADMIN_PASSWORD: ") {
		t.Fatalf("weak admin password: %v (exit %d)", err, exitCode(err))
	}
	delete(env, "PLAZA_ADMIN_PASSWORD")
	if _, _, err := plazaCmd(env, "", "serve"); err == nil || !strings.HasPrefix(err.Error(), "PLAZA_ADMIN_PASSWORD: ") {
		t.Fatalf("admin email without a password: %v", err)
	}
}

// TestSessionsAcrossInstances: two instances on one PostgreSQL and one Redis act as one.
// A token from one works on the other, a logout on one is honoured by the other (the
// revocation list is in Redis), and failed logins count on both.
func TestSessionsAcrossInstances(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	env := map[string]string{
		"DATABASE_URL":         storetest.PostgresURL(t),
		"REDIS_URL":            rs.URL(),
		"PLAZA_JWT_SECRET":     "a shared signing key of at least 32 bytes",
		"PLAZA_ADMIN_EMAIL":    "root@example.com",
		"PLAZA_ADMIN_PASSWORD": strongPassword,
		"PLAZA_RATE_LIMIT":     "0",
	}
	a, b := start(t, env), start(t, env)
	tok := signIn(t, a.URL, "root@example.com", strongPassword)
	if code, _ := apiJSON(t, "GET", b.URL+"/api/users/me", tok.AccessToken, ""); code != 200 {
		t.Fatalf("A's token on B: %d", code)
	}
	if code, _ := apiJSON(t, "POST", a.URL+"/api/auth/logout", tok.AccessToken, `{"refresh_token":"`+tok.RefreshToken+`"}`); code != 204 {
		t.Fatalf("logout on A: %d", code)
	}
	if code, _ := apiJSON(t, "GET", b.URL+"/api/users/me", tok.AccessToken, ""); code != 401 {
		t.Fatalf("logged-out token on B: %d", code)
	}
	if code, _ := apiJSON(t, "POST", b.URL+"/api/auth/refresh", "", `{"refresh_token":"`+tok.RefreshToken+`"}`); code != 401 {
		t.Fatalf("logged-out refresh token on B: %d", code)
	}
	for i := range 5 {
		in := []*instance{a, b}[i%2]
		if code, _ := apiJSON(t, "POST", in.URL+"/api/auth/login", "", `{"email":"root@example.com","password":"wrong guess"}`); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	for _, in := range []*instance{a, b} {
		if code, _ := apiJSON(t, "POST", in.URL+"/api/auth/login", "", `{"email":"root@example.com","password":"`+strongPassword+`"}`); code != 429 {
			t.Fatalf("after 5 failures spread over both instances: %d", code)
		}
	}
}
