package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// cookieReq sends an auth request in cookie mode with the given cookie (if any) and extra
// headers; it returns the response, its body and the refresh cookie it set (nil if none).
func (e *usersEnv) cookieReq(t *testing.T, path, access, cookie, body string, header map[string]string) (*http.Response, []byte, *http.Cookie) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := must(http.NewRequest("POST", e.url+path, rd))
	req.Header.Set(tokenModeHeader, "cookie")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: refreshCookieName, Value: cookie})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.Name == refreshCookieName {
			return res, b, c
		}
	}
	return res, b, nil
}

func TestCookieModeKeepsTheRefreshTokenFromScript(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		login := `{"email":"` + ann.Email + `","password":"` + userPassword + `"}`
		res, body, c := e.cookieReq(t, "/api/auth/login", "", "", login, nil)
		if res.StatusCode != 200 || c == nil {
			t.Fatalf("login: %d %s, cookie %v", res.StatusCode, body, c)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/api/auth" || c.Secure || c.Value == "" {
			t.Fatalf("refresh cookie on plain-HTTP loopback: %+v", c)
		}
		var tok map[string]any
		decodeInto(t, body, &tok)
		if _, ok := tok["refresh_token"]; ok || tok["access_token"] == "" || res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("cookie-mode body carries the refresh token or lacks the access token: %s", body)
		}

		// Refresh rotates the cookie; the old one, presented again, is theft and clears it.
		res, body, c2 := e.cookieReq(t, "/api/auth/refresh", "", c.Value, "", nil)
		if res.StatusCode != 200 || c2 == nil || c2.Value == c.Value || c2.Value == "" {
			t.Fatalf("refresh: %d %s, cookie %v", res.StatusCode, body, c2)
		}
		decodeInto(t, body, &tok)
		access := tok["access_token"].(string)
		res, _, cleared := e.cookieReq(t, "/api/auth/refresh", "", c.Value, "{}", nil)
		if res.StatusCode != 401 || cleared == nil || cleared.MaxAge >= 0 {
			t.Fatalf("spent cookie: %d, cookie %v", res.StatusCode, cleared)
		}

		// Reuse ended the login: log in again and log out with the cookie.
		_, body, c = e.cookieReq(t, "/api/auth/login", "", "", login, nil)
		decodeInto(t, body, &tok)
		access = tok["access_token"].(string)
		res, body, cleared = e.cookieReq(t, "/api/auth/logout", access, c.Value, "", map[string]string{"Origin": e.url})
		if res.StatusCode != 204 || cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" {
			t.Fatalf("logout: %d %s, cookie %v", res.StatusCode, body, cleared)
		}
		e.expect(t, 401, userReq{method: "GET", path: "/api/users/me", token: access})
		if res, _, _ := e.cookieReq(t, "/api/auth/refresh", "", c.Value, "", nil); res.StatusCode != 401 {
			t.Fatalf("refresh after logout: %d", res.StatusCode)
		}
	})
}

func TestCookieModeRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()
	usersTest(t, func(t *testing.T, e *usersEnv) {
		ann := e.register(t, "Ann Smith")
		_, body, c := e.cookieReq(t, "/api/auth/login", "", "", `{"email":"`+ann.Email+`","password":"`+userPassword+`"}`, nil)
		var tok map[string]any
		decodeInto(t, body, &tok)
		access := tok["access_token"].(string)
		for _, h := range []map[string]string{
			{"Origin": "https://evil.example"},
			{"Sec-Fetch-Site": "cross-site"},
		} {
			for _, path := range []string{"/api/auth/refresh", "/api/auth/logout"} {
				res, body, set := e.cookieReq(t, path, access, c.Value, "", h)
				if res.StatusCode != 403 || set != nil {
					t.Fatalf("%s with %v: %d %s, cookie %v", path, h, res.StatusCode, body, set)
				}
			}
		}
		// The refused requests changed nothing: the cookie still refreshes, from our origin.
		if res, body, _ := e.cookieReq(t, "/api/auth/refresh", "", c.Value, "", map[string]string{"Origin": e.url, "Sec-Fetch-Site": "same-origin"}); res.StatusCode != 200 {
			t.Fatalf("same-origin refresh: %d %s", res.StatusCode, body)
		}
		// A refresh token in the body is refused in cookie mode: it would let script hold one.
		if res, _, _ := e.cookieReq(t, "/api/auth/refresh", "", c.Value, `{"refresh_token":"x"}`, nil); res.StatusCode != 400 {
			t.Fatalf("cookie mode with a body token: %d", res.StatusCode)
		}
		// No cookie at all: 401.
		if res, _, _ := e.cookieReq(t, "/api/auth/refresh", "", "", "", nil); res.StatusCode != 401 {
			t.Fatalf("cookie mode without a cookie: %d", res.StatusCode)
		}
	})
}

func TestRefreshCookieIsSecureOffLoopback(t *testing.T) {
	t.Parallel()
	for host, secure := range map[string]bool{"localhost:8080": false, "127.0.0.1:8080": false, "[::1]:8080": false, "shop.example.com": true, "10.0.0.5:8080": true} {
		rec := httptest.NewRecorder()
		setRefreshCookie(rec, httptest.NewRequest("POST", "http://"+host+"/api/auth/login", bytes.NewReader(nil)), "t")
		c := rec.Result().Cookies()
		if len(c) != 1 || c[0].Secure != secure {
			t.Errorf("host %s: cookies %+v, want Secure=%v", host, c, secure)
		}
	}
}
