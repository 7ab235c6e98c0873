package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// Cookie mode keeps the refresh token away from script: a browser client sends
// X-Plaza-Token-Mode: cookie to the auth endpoints, which then set and read the refresh
// token as an HttpOnly cookie scoped to /api/auth and leave it out of JSON bodies. The
// access token stays in the page's memory. Without the header, the JSON mode is unchanged.
const (
	tokenModeHeader   = "X-Plaza-Token-Mode"
	refreshCookieName = "plaza_refresh"
	refreshCookiePath = "/api/auth"
)

// cookieMode reports whether the client asked for cookie mode.
func cookieMode(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get(tokenModeHeader), "cookie")
}

// cookieTokens is the token response in cookie mode: the refresh token is in the cookie.
type cookieTokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// checkCookieRequest guards the cookie-mode endpoints against cross-site requests. The
// browser attaches the cookie on its own, so the request must prove it comes from our
// pages: the custom header (present, or we would not be here) cannot be sent cross-origin
// without a CORS preflight, which cors() answers without permission for unknown origins;
// SameSite=Strict keeps the cookie off cross-site requests; and an Origin or a
// Sec-Fetch-Site saying otherwise is refused outright, should either of those give way.
func (s *Server) checkCookieRequest(r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return plaza.Errorf(plaza.EForbidden, "cookie-mode auth requests must come from this site")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser, or a same-origin navigation: no ambient credential is at risk
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	if slices.Contains(s.origins, strings.TrimSuffix(origin, "/")) {
		return nil
	}
	return plaza.Errorf(plaza.EForbidden, "origin %q may not use cookie-mode auth here", origin)
}

// refreshTokenOf returns the refresh token a refresh or logout presents: the JSON body's in
// JSON mode; in cookie mode the cookie's, with the body optional (empty or {}).
func (s *Server) refreshTokenOf(r *http.Request) (string, error) {
	if !cookieMode(r) {
		in, err := Decode[refreshTokenRequest](r)
		return in.RefreshToken, err
	}
	if err := s.checkCookieRequest(r); err != nil {
		return "", err
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", decodeError(err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		in, err := decodeJSON[refreshTokenRequest](bytes.NewReader(b))
		if err != nil {
			return "", err
		}
		if in.RefreshToken != "" {
			return "", plaza.Errorf(plaza.EBadRequest, "in cookie mode the refresh token comes from the cookie; leave refresh_token out")
		}
	}
	c, err := r.Cookie(refreshCookieName)
	if err != nil || c.Value == "" {
		return "", plaza.Errorf(plaza.EUnauthenticated, "no refresh cookie; log in")
	}
	return c.Value, nil
}

// setRefreshCookie stores the refresh token in the browser, or clears it (token "").
// It is a session cookie: a closed browser forgets the login, while the server still bounds
// it by PLAZA_SESSION_LIFETIME.
func setRefreshCookie(w http.ResponseWriter, r *http.Request, token string) {
	c := &http.Cookie{
		Name: refreshCookieName, Value: token, Path: refreshCookiePath,
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode,
	}
	if token == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// secureCookie is false only on plain HTTP to a loopback host, where browsers serve the
// development setup (go run) without TLS; everywhere else the cookie is Secure, so it never
// travels unencrypted.
func secureCookie(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// writeTokens answers a token response; RFC 6749 §5.1 requires no-store on it. In cookie
// mode the refresh token goes into the cookie instead of the body, and a refresh token
// that failed is cleared.
func (s *Server) writeTokens(w http.ResponseWriter, r *http.Request, t users.Tokens, err error) {
	if err != nil {
		if cookieMode(r) && plaza.ErrorCodeOf(err) == plaza.EUnauthenticated && r.URL.Path != "/api/auth/login" {
			setRefreshCookie(w, r, "")
		}
		writeError(w, r, s.log, err)
		return
	}
	noStore(w)
	if cookieMode(r) {
		setRefreshCookie(w, r, t.RefreshToken)
		encode(w, r, http.StatusOK, cookieTokens{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn})
		return
	}
	encode(w, r, http.StatusOK, t)
}
