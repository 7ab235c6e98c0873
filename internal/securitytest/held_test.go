package securitytest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"plaza/internal/httpapi"
	"plaza/internal/plaza"
)

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }

// Probes and metrics: public, so they must not load the database or leak in production.
func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	for range 20 {
		s.expect(t, 200, req{method: "GET", path: "/readyz"})
		s.expect(t, 200, req{method: "GET", path: "/api/health"})
	}
	if n := s.probes.Load(); n > 2 {
		t.Fatalf("40 health requests ran the database probe %d times; want it cached", n)
	}

	prod := newSite(t, options{metrics: httpapi.MetricsElsewhere})
	prod.expect(t, 404, req{method: "GET", path: "/metrics"})
	tok := newSite(t, options{metrics: httpapi.MetricsToken, metricsBearer: "scrape-secret-0123456789"})
	tok.expect(t, 401, req{method: "GET", path: "/metrics"})
	tok.expect(t, 401, req{method: "GET", path: "/metrics", token: "scrape-secret-012345678"})
	if r := tok.expect(t, 200, req{method: "GET", path: "/metrics", token: "scrape-secret-0123456789"}); !strings.Contains(string(r.body), "plaza_http_requests_total") {
		t.Fatalf("metrics body: %.200s", r.body)
	}
}

// JWT forgery: the algorithm is pinned, the signature and claims are checked.
func TestForgedTokens(t *testing.T) {
	t.Parallel()
	// More forgeries than the failed-authentication burst: each must be a 401 of its own.
	s := newSite(t, options{authFailureBurst: 100})
	ann := s.register(t, plaza.RoleUser)
	parts := strings.Split(ann.access, ".")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(ann.access, claims); err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims, kid any) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != nil {
			tok.Header["kid"] = kid
		}
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for key, val := range claims {
			c[key] = val
		}
		c[k] = v
		return c
	}
	var kid any
	{
		var h map[string]any
		b, _ := jwtSegment(parts[0])
		_ = json.Unmarshal(b, &h)
		kid = h["kid"]
	}
	forged := map[string]string{
		"alg none":           sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims, kid),
		"other HMAC key":     sign(jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!"), claims, kid),
		"HS512 same key":     sign(jwt.SigningMethodHS512, jwtKey, claims, kid),
		"role claim admin":   parts[0] + "." + encodeSegment(with("role", "admin")) + "." + parts[2],
		"expired":            sign(jwt.SigningMethodHS256, jwtKey, with("exp", time.Now().Add(-time.Hour).Unix()), kid),
		"not yet issued":     sign(jwt.SigningMethodHS256, jwtKey, with("iat", time.Now().Add(time.Hour).Unix()), kid),
		"wrong audience":     sign(jwt.SigningMethodHS256, jwtKey, with("aud", "someone-else"), kid),
		"wrong issuer":       sign(jwt.SigningMethodHS256, jwtKey, with("iss", "evil"), kid),
		"unknown kid":        sign(jwt.SigningMethodHS256, jwtKey, claims, "k-unknown"),
		"truncated":          ann.access[:len(ann.access)-4],
		"signature stripped": parts[0] + "." + parts[1] + ".",
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			s.expect(t, 401, req{method: "GET", path: "/api/users/me", token: tok})
		})
	}
}

// Broken object-level authorization and mass assignment held: they keep holding.
func TestObjectAuthorization(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ann, bob := s.register(t, plaza.RoleUser), s.register(t, plaza.RoleUser)
	bobPath := "/api/users/" + bob.ID
	s.expect(t, 403, req{method: "PATCH", path: bobPath, token: ann.access, body: `{"name":"Pwned"}`})
	s.expect(t, 403, req{method: "PUT", path: bobPath, token: ann.access, body: `{"name":"Pwned","email":"p@example.com"}`})
	s.expect(t, 403, req{method: "DELETE", path: bobPath, token: ann.access})
	s.expect(t, 403, req{method: "GET", path: "/api/users", token: ann.access})
	if r := s.expect(t, 200, req{method: "GET", path: bobPath, token: ann.access}); strings.Contains(string(r.body), bob.Email) {
		t.Fatalf("another user's email is visible: %s", r.body)
	}
	self := "/api/users/" + ann.ID
	s.expect(t, 403, req{method: "PATCH", path: self, token: ann.access, body: `{"role":"admin"}`})
	for _, field := range []string{`"id":"x"`, `"created_at":"2000-01-01T00:00:00Z"`, `"password_hash":"x"`, `"email_key":"x"`} {
		s.expect(t, 400, req{method: "PATCH", path: self, token: ann.access, body: `{` + field + `}`})
	}
	s.expect(t, 403, req{method: "POST", path: "/api/products", token: ann.access, body: productBody("Toy")})
	s.expect(t, 401, req{method: "POST", path: "/api/products", body: productBody("Toy")})
}

// Oversize and deeply nested bodies, header injection and CORS held: they keep holding.
func TestBodiesHeadersAndCORS(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	s.expect(t, 413, req{method: "POST", path: "/api/users", body: `{"name":"` + strings.Repeat("x", 70<<10) + `"}`})
	s.expect(t, 400, req{method: "POST", path: "/api/users", body: strings.Repeat("[", 10000) + strings.Repeat("]", 10000)})
	s.expect(t, 400, req{method: "POST", path: "/api/auth/login", body: `{"email":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5001)})

	r := s.do(t, req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": "abc\tX-Injected: 1"}})
	if r.header.Get("X-Injected") != "" || strings.ContainsAny(r.header.Get("X-Request-ID"), "\t: ") {
		t.Fatalf("request ID echoed unchecked: %q", r.header.Get("X-Request-ID"))
	}
	r = s.do(t, req{method: "GET", path: "/api/products", header: map[string]string{"Origin": "https://evil.example"}})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS allows a foreign origin: %v", r.header)
	}
	r = s.do(t, req{method: "GET", path: "/api/products", header: map[string]string{"Origin": "https://shop.example"}})
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("CORS refuses the configured origin: %v", r.header)
	}
}
