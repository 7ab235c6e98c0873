package securitytest

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"plaza/internal/plaza"
)

// Found open by the review, closed since: each test names the finding.

// Search is a cost an anonymous client chooses: it is bounded before it reaches the index.
func TestSearchIsBounded(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	for name, q := range map[string]string{
		"a common word a thousand times": strings.Repeat("laptop ", 1000),
		"nine different words":           "a b c d e f g h i",
		"one endless word":               strings.Repeat("x", 41),
		"nine words after folding":       strings.Repeat("ab ", 70) + "c d e f g h i j",
	} {
		t.Run(name, func(t *testing.T) {
			r := s.expect(t, 400, req{method: "GET", path: "/api/products?q=" + url.QueryEscape(q)})
			if f := problemFields(t, r); len(f) != 1 || f[0] != "q" {
				t.Fatalf("fields %v; want the problem to name q", f)
			}
		})
	}
	// Repetition within the bounds is folded, FTS operators are words, not syntax.
	for _, q := range []string{"laptop laptop LAPTOP", `"unterminated`, "laptop* NEAR gaming", "(a) OR 1=1 --", "-x ^y"} {
		s.expect(t, 200, req{method: "GET", path: "/api/products?q=" + url.QueryEscape(q)})
	}
}

// A 15-minute access token alone must not take the account over.
func TestCredentialChangesNeedTheCurrentPassword(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ann := s.register(t, plaza.RoleUser)
	self := "/api/users/" + ann.ID
	for _, body := range []string{
		`{"email":"thief@example.com"}`,
		`{"password":"a brand new passphrase"}`,
		`{"email":"thief@example.com","password":"a brand new passphrase"}`,
	} {
		r := s.expect(t, 422, req{method: "PATCH", path: self, token: ann.access, body: body})
		if f := problemFields(t, r); len(f) != 1 || f[0] != "current_password" {
			t.Fatalf("PATCH %s: fields %v", body, f)
		}
		s.expect(t, 422, req{method: "PUT", path: self, token: ann.access, body: `{"name":"Ann","email":"thief@example.com","password":"a brand new passphrase"}`})
	}
	// Wrong guesses are failed logins: refused, then throttled like logins.
	for range 5 {
		s.expect(t, 403, req{method: "PATCH", path: self, token: ann.access, body: `{"email":"thief@example.com","current_password":"guess guess guess"}`})
	}
	s.expect(t, 429, req{method: "PATCH", path: self, token: ann.access, body: `{"email":"thief@example.com","current_password":"guess guess guess"}`})
	s.expect(t, 429, req{method: "POST", path: "/api/auth/login", body: `{"email":"` + ann.Email + `","password":"` + password + `"}`})
	// A name change needs no password, and nothing changed the email meanwhile.
	s.expect(t, 200, req{method: "PATCH", path: self, token: ann.access, body: `{"name":"Ann Again"}`})
	if me := s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: ann.access}); !strings.Contains(string(me.body), ann.Email) {
		t.Fatalf("email changed: %s", me.body)
	}
	// An admin resets another user's password without it (and the change is logged).
	admin := s.register(t, plaza.RoleAdmin)
	bob := s.register(t, plaza.RoleUser)
	s.expect(t, 200, req{method: "PATCH", path: "/api/users/" + bob.ID, token: admin.access, body: `{"password":"reset by the admin 1"}`})
}

// Garbage tokens never reached the limiter: now failed authentication has its own bucket.
func TestBadCredentialsAreLimited(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	limited := false
	for i := range 40 {
		r := s.do(t, req{method: "GET", path: "/api/users/me", token: "garbage." + strings.Repeat("x", i)})
		if r.status == 429 {
			limited = r.header.Get("Retry-After") != ""
			break
		}
		if r.status != 401 {
			t.Fatalf("bad token %d: %d", i, r.status)
		}
	}
	if !limited {
		t.Fatal("40 bad tokens in a row never answered 429 with Retry-After")
	}
	// The same for a malformed scheme.
	r := s.do(t, req{method: "GET", path: "/api/users/me", header: map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}})
	if r.status != 429 {
		t.Fatalf("malformed Authorization after the limit: %d", r.status)
	}
}

// Registration says which emails exist (409), so it is limited per IP like login.
func TestRegistrationIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	body := func(i int) string {
		return `{"name":"Probe","email":"probe` + strings.Repeat("x", i) + `@example.com","password":"` + password + `"}`
	}
	for i := range 30 {
		s.expect(t, 201, req{method: "POST", path: "/api/users", body: body(i)})
	}
	r := s.expect(t, 429, req{method: "POST", path: "/api/users", body: body(31)})
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// encoding/json turns invalid UTF-8 and lone surrogates into U+FFFD: two different byte
// strings would be one password or one email. They are refused instead.
func TestInvalidTextIsRefused(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	for name, body := range map[string]string{
		"invalid UTF-8 in a password":  `{"name":"Eve","email":"eve@example.com","password":"correct horse\xff battery"}`,
		"invalid UTF-8 in an email":    `{"name":"Eve","email":"em\xff@example.com","password":"` + password + `"}`,
		"overlong encoding":            `{"name":"\xc0\xafEve","email":"eve@example.com","password":"` + password + `"}`,
		"lone high surrogate escape":   `{"name":"Eve\ud800","email":"eve@example.com","password":"` + password + `"}`,
		"lone low surrogate escape":    `{"name":"Eve\udc00x","email":"eve@example.com","password":"` + password + `"}`,
		"reversed surrogate pair":      `{"name":"Eve\udc00\ud800","email":"eve@example.com","password":"` + password + `"}`,
		"high surrogate at body's end": `{"name":"Eve","email":"eve@example.com","password":"x\ud83d`,
	} {
		t.Run(name, func(t *testing.T) {
			s.expect(t, 400, req{method: "POST", path: "/api/users", body: body})
		})
	}
	// A real surrogate pair (an emoji) and an escaped backslash before "u" are fine.
	s.expect(t, 201, req{method: "POST", path: "/api/users", body: `{"name":"Eve \ud83d\ude00 \\ud800","email":"eve@example.com","password":"` + password + `"}`})
}

// Look-alike and compatibility forms of an existing email are not new accounts.
func TestEmailLookAlikes(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	reg := func(email string) string {
		return `{"name":"Ann","email":"` + email + `","password":"` + password + `"}`
	}
	s.expect(t, 201, req{method: "POST", path: "/api/users", body: reg("anna@example.com")})
	s.expect(t, 422, req{method: "POST", path: "/api/users", body: reg("\u0430nna@example.com")}) // Cyrillic а
	s.expect(t, 422, req{method: "POST", path: "/api/users", body: reg("ann\u03b1@example.com")}) // Greek α
	s.expect(t, 409, req{method: "POST", path: "/api/users", body: reg("ANNA@EXAMPLE.COM")})
	s.expect(t, 409, req{method: "POST", path: "/api/users", body: reg("\uff41nna@example.com")}) // fullwidth ａ
	s.expect(t, 409, req{method: "POST", path: "/api/users", body: reg("anna@EXAMPLE.com")})
	// A whole address in one other script is a different, legitimate address.
	s.expect(t, 201, req{method: "POST", path: "/api/users", body: reg("\u0430\u043d\u043d\u0430@example.com")})
}

// One text rule for every human-readable field: what user names refuse, products refuse.
func TestProductTextRule(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	admin := s.register(t, plaza.RoleAdmin)
	for name, text := range map[string]string{
		"NUL":           "Toy\x00",
		"bell":          "Toy\x07",
		"bidi override": "Toy \u202egnp.exe",
		"bidi isolate":  "Toy \u2066x\u2069",
		"noncharacter":  "Toy \uffff",
		"line break":    "Toy\nCar",
	} {
		t.Run(name, func(t *testing.T) {
			r := s.expect(t, 422, req{method: "POST", path: "/api/products", token: admin.access, body: productBody(text)})
			if f := problemFields(t, r); len(f) != 1 || f[0] != "name" {
				t.Fatalf("fields %v", f)
			}
			s.expect(t, 422, req{method: "POST", path: "/api/users", body: `{"name":` + jsonString(text) + `,"email":"x@example.com","password":"` + password + `"}`})
		})
	}
	s.expect(t, 422, req{method: "POST", path: "/api/products", token: admin.access,
		body: `{"name":"Toy","price_cents":1,"category":"toys","description":"ok\u202e"}`})
	s.expect(t, 201, req{method: "POST", path: "/api/products", token: admin.access,
		body: `{"name":"Toy","price_cents":1,"category":"toys","description":"two\nlines\tand a tab"}`})
}

// Logout with someone else's refresh token said "belongs to another user" (confirming it
// is live) and left the caller signed in.
func TestLogoutWithAnotherUsersToken(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ann, bob := s.register(t, plaza.RoleUser), s.register(t, plaza.RoleUser)
	unknown := s.do(t, req{method: "POST", path: "/api/auth/logout", token: s.register(t, plaza.RoleUser).access, body: `{"refresh_token":"nonsense"}`})
	r := s.do(t, req{method: "POST", path: "/api/auth/logout", token: ann.access, body: `{"refresh_token":"` + bob.refresh + `"}`})
	if r.status != unknown.status || r.status != 204 {
		t.Fatalf("logout with another's token: %d %s; with an unknown one: %d", r.status, r.body, unknown.status)
	}
	s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: ann.access})
	s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: bob.access})
	s.expect(t, 200, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + bob.refresh + `"}`})
}

// Cursors are client input that reaches a query: only what the server issued is accepted.
func TestForgedCursors(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	admin := s.register(t, plaza.RoleAdmin)
	for i := range 3 {
		s.expect(t, 201, req{method: "POST", path: "/api/products", token: admin.access, body: productBody("Toy " + strings.Repeat("I", i+1))})
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := jsonDecode(s.expect(t, 200, req{method: "GET", path: "/api/products?sort=price&limit=1"}).body, &page); err != nil || page.NextCursor == "" {
		t.Fatalf("no cursor: %v", err)
	}
	s.expect(t, 200, req{method: "GET", path: "/api/products?sort=price&limit=1&cursor=" + page.NextCursor})
	raw, _ := base64.RawURLEncoding.DecodeString(page.NextCursor)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	forged := map[string]string{
		"SQL in the ID":        enc(`{"s":"price","k":100,"i":"' OR 1=1 --"}`),
		"30 KB key":            enc(`{"s":"price","k":100,"i":"` + strings.Repeat("a", 30<<10) + `"}`),
		"unknown field":        enc(strings.TrimSuffix(string(raw), "}") + `,"x":1}`),
		"extra white space":    enc(strings.Replace(string(raw), ":", ": ", 1)),
		"padded base64":        base64.URLEncoding.EncodeToString(raw),
		"other sort's cursor":  enc(strings.Replace(string(raw), `"price"`, `"name"`, 1)),
		"not base64":           "%%%%",
		"not JSON":             enc("hello"),
		"trailing second JSON": enc(string(raw) + "{}"),
	}
	for name, c := range forged {
		t.Run(name, func(t *testing.T) {
			s.expect(t, 400, req{method: "GET", path: "/api/products?sort=price&limit=1&cursor=" + url.QueryEscape(c)})
		})
	}
	s.expect(t, 400, req{method: "GET", path: "/api/users?cursor=" + enc(`{"id":"1 OR 1=1"}`), token: admin.access})
}

// A password change (by the user or an admin) ends every other session: a refresh token or
// access token stolen before it stops working.
func TestPasswordChangeEndsSessions(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	admin := s.register(t, plaza.RoleAdmin)
	for _, byAdmin := range []bool{false, true} {
		victim := s.register(t, plaza.RoleUser)
		// Access tokens carry whole seconds: let the stolen one be from an earlier second.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		body, token := `{"password":"a whole new passphrase","current_password":"`+password+`"}`, victim.access
		if byAdmin {
			body, token = `{"password":"a whole new passphrase"}`, admin.access
		}
		s.expect(t, 200, req{method: "PATCH", path: "/api/users/" + victim.ID, token: token, body: body})
		s.expect(t, 401, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + victim.refresh + `"}`})
		s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: victim.access})
		fresh := s.expect(t, 200, req{method: "POST", path: "/api/auth/login", body: `{"email":"` + victim.Email + `","password":"a whole new passphrase"}`})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := jsonDecode(fresh.body, &tok); err != nil {
			t.Fatal(err)
		}
		s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: tok.AccessToken})
	}
	// The admin's own session is untouched by resetting someone else's password.
	s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: admin.access})
}

// Users had no ETag/If-Match like products: concurrent edits silently overwrote each other.
func TestUserVersions(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ann := s.register(t, plaza.RoleUser)
	self := "/api/users/" + ann.ID
	me := s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: ann.access})
	tag := me.header.Get("ETag")
	if tag == "" {
		t.Fatal("GET /api/users/me without an ETag")
	}
	s.expect(t, 304, req{method: "GET", path: self, token: ann.access, header: map[string]string{"If-None-Match": tag}})
	edited := s.expect(t, 200, req{method: "PATCH", path: self, token: ann.access, body: `{"name":"Ann One"}`, header: map[string]string{"If-Match": tag}})
	if edited.header.Get("ETag") == tag || edited.header.Get("ETag") == "" {
		t.Fatalf("ETag after a write: %q (was %q)", edited.header.Get("ETag"), tag)
	}
	// The first tag is stale now: the second writer is told instead of overwriting.
	s.expect(t, 412, req{method: "PATCH", path: self, token: ann.access, body: `{"name":"Ann Two"}`, header: map[string]string{"If-Match": tag}})
	s.expect(t, 412, req{method: "PUT", path: self, token: ann.access, body: `{"name":"Ann Two","email":"` + ann.Email + `"}`, header: map[string]string{"If-Match": tag}})
	s.expect(t, 412, req{method: "DELETE", path: self, token: ann.access, header: map[string]string{"If-Match": tag}})
	s.expect(t, 412, req{method: "PATCH", path: self, token: ann.access, body: `{"name":"Ann Two"}`, header: map[string]string{"If-Match": `"` + ann.ID + `-v1", W/` + edited.header.Get("ETag")}})
	s.expect(t, 200, req{method: "PATCH", path: self, token: ann.access, body: `{"name":"Ann Two"}`, header: map[string]string{"If-Match": edited.header.Get("ETag")}})
	if r := s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: ann.access}); !strings.Contains(string(r.body), "Ann Two") {
		t.Fatalf("after the conditional write: %s", r.body)
	}
}

// Nothing stopped the last admin from demoting or deleting themself, leaving a deployment
// that no API call can administer again.
func TestLastAdminStays(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	root := s.register(t, plaza.RoleAdmin)
	self := "/api/users/" + root.ID
	s.expect(t, 409, req{method: "PATCH", path: self, token: root.access, body: `{"role":"user"}`})
	s.expect(t, 409, req{method: "PUT", path: self, token: root.access, body: `{"name":"Root","email":"` + root.Email + `","role":"user"}`})
	s.expect(t, 409, req{method: "DELETE", path: self, token: root.access})
	s.expect(t, 200, req{method: "GET", path: "/api/users", token: root.access})
	// With a second admin, either may step down, but not both.
	other := s.register(t, plaza.RoleAdmin)
	s.expect(t, 200, req{method: "PATCH", path: self, token: root.access, body: `{"role":"user"}`})
	s.expect(t, 409, req{method: "DELETE", path: "/api/users/" + other.ID, token: other.access})
}

// A refresh family revoked for reuse left its newest access token valid for up to 15
// minutes: now every access token of that login ends with it, and so on logout.
func TestRevokedLoginEndsItsAccessTokens(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ann := s.register(t, plaza.RoleUser)
	var rotated struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	r := s.expect(t, 200, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + ann.refresh + `"}`})
	if err := jsonDecode(r.body, &rotated); err != nil {
		t.Fatal(err)
	}
	s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: rotated.AccessToken})
	// The spent token comes back: theft. Both access tokens of that login end at once.
	s.expect(t, 401, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + ann.refresh + `"}`})
	s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: rotated.AccessToken})
	s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: ann.access})
	s.expect(t, 401, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + rotated.RefreshToken + `"}`})

	// Logout ends every access token of the login, not only the one that called it; another
	// login of the same user is untouched.
	bob := s.register(t, plaza.RoleUser)
	r = s.expect(t, 200, req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token":"` + bob.refresh + `"}`})
	if err := jsonDecode(r.body, &rotated); err != nil {
		t.Fatal(err)
	}
	other := s.expect(t, 200, req{method: "POST", path: "/api/auth/login", body: `{"email":"` + bob.Email + `","password":"` + password + `"}`})
	var second struct {
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(other.body, &second); err != nil {
		t.Fatal(err)
	}
	s.expect(t, 204, req{method: "POST", path: "/api/auth/logout", token: rotated.AccessToken, body: `{"refresh_token":"` + rotated.RefreshToken + `"}`})
	s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: bob.access})
	s.expect(t, 200, req{method: "GET", path: "/api/users/me", token: second.AccessToken})
}
