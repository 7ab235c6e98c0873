package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"plaza/internal/plaza"
)

// logBuffer is a concurrency-safe log sink the tests read back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

type fakeAuth map[string]plaza.Principal

func (f fakeAuth) Authenticate(_ context.Context, tok string) (plaza.Principal, error) {
	if p, ok := f[tok]; ok {
		return p, nil
	}
	return plaza.Principal{}, plaza.Errorf(plaza.EUnauthenticated, "invalid token")
}

func newTestServer(t *testing.T, opts Options) (*httptest.Server, *Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	s := New(opts)
	s.handle("GET /test/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	s.handle("POST /test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := Decode[map[string]any](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		encode(w, r, http.StatusOK, v)
	}))
	s.handle("GET /test/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			http.Error(w, "deadline: "+err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: "+string(rune('a'+i))+"\n\n")
			if err := rc.Flush(); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}))
	s.handle("GET /test/hijack", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "hijack: "+err.Error(), 500)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello")
		rw.Flush()
	}))
	s.handle("GET /test/whoami", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := plaza.PrincipalFrom(r.Context())
		// A context a handler derives from the request's still answers what the chain set.
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		encode(w, r, http.StatusOK, map[string]string{"user": p.UserID, "ip": plaza.ClientIPFrom(ctx), "request_id": RequestIDFrom(ctx)})
	}))
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s, logs
}

func decodeProblem(t *testing.T, res *http.Response) problem {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Status != res.StatusCode || p.Instance == "" || p.Instance != res.Header.Get("X-Request-ID") {
		t.Fatalf("problem %+v does not match status %d / request id %q", p, res.StatusCode, res.Header.Get("X-Request-ID"))
	}
	return p
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestRequestIDGeneratedEchoedAndLogged(t *testing.T) {
	t.Parallel()
	ts, _, logs := newTestServer(t, Options{})
	res := do(t, must(http.NewRequest("GET", ts.URL+"/healthz", nil)))
	id := res.Header.Get("X-Request-ID")
	if len(id) != 32 {
		t.Fatalf("generated request id %q", id)
	}
	req := must(http.NewRequest("GET", ts.URL+"/healthz", nil))
	req.Header.Set("X-Request-ID", "client-id-123")
	if got := do(t, req).Header.Get("X-Request-ID"); got != "client-id-123" {
		t.Fatalf("well-formed incoming id not kept: %q", got)
	}
	req = must(http.NewRequest("GET", ts.URL+"/healthz", nil))
	req.Header.Set("X-Request-ID", "bad id\twith <script>")
	if got := do(t, req).Header.Get("X-Request-ID"); got == "bad id\twith <script>" || len(got) != 32 {
		t.Fatalf("malformed incoming id kept: %q", got)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" && l["request_id"] == id {
			found = true
			if l["route"] != "/healthz" || l["method"] != "GET" || l["status"] != float64(200) || l["client_ip"] != "127.0.0.1" {
				t.Fatalf("access log line incomplete: %v", l)
			}
		}
	}
	if !found {
		t.Fatal("no access log line carries the request id")
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	for _, path := range []string{"/healthz", "/api/nope"} {
		res := do(t, must(http.NewRequest("GET", ts.URL+path, nil)))
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || res.Header.Get("Referrer-Policy") == "" {
			t.Fatalf("%s: security headers missing: %v", path, res.Header)
		}
	}
}

func TestUnknownRouteAndWrongMethodAreProblems(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	res := do(t, must(http.NewRequest("GET", ts.URL+"/api/does-not-exist", nil)))
	if res.StatusCode != 404 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if p := decodeProblem(t, res); p.Code != plaza.ENotFound {
		t.Fatalf("code %q", p.Code)
	}
	res = do(t, must(http.NewRequest("DELETE", ts.URL+"/healthz", nil)))
	if res.StatusCode != 405 || !strings.Contains(res.Header.Get("Allow"), "GET") {
		t.Fatalf("status %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	decodeProblem(t, res)

	// The mux's redirect to a cleaned path stays a redirect with its Location.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(ts.URL + "/api//health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/api/health" {
		t.Fatalf("cleaned-path redirect: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestPanicAnswers500AndServerKeepsServing(t *testing.T) {
	t.Parallel()
	ts, _, logs := newTestServer(t, Options{})
	res := do(t, must(http.NewRequest("GET", ts.URL+"/test/panic", nil)))
	if res.StatusCode != 500 {
		t.Fatalf("status %d", res.StatusCode)
	}
	p := decodeProblem(t, res)
	if strings.Contains(p.Detail, "boom") {
		t.Fatalf("panic value leaked to client: %q", p.Detail)
	}
	if res := do(t, must(http.NewRequest("GET", ts.URL+"/healthz", nil))); res.StatusCode != 200 {
		t.Fatalf("after panic: %d", res.StatusCode)
	}
	var stack bool
	for _, l := range logs.lines(t) {
		if l["msg"] == "panic serving request" && strings.Contains(l["stack"].(string), "goroutine") {
			stack = true
		}
	}
	if !stack {
		t.Fatal("no stack in the log")
	}
}

func TestBodyLimitAndStrictDecoding(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{MaxBodyBytes: 64})
	cases := []struct {
		name   string
		body   string
		status int
		detail string
	}{
		{"ok", `{"a":1}`, 200, ""},
		{"too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, 413, "larger than"},
		{"malformed", `{"a":`, 400, "ends in the middle"},
		{"syntax", `{"a" 1}`, 400, "malformed JSON"},
		{"trailing", `{"a":1} {"b":2}`, 400, "after the JSON value"},
		{"wrong type", `[1,2]`, 400, "the body must be a JSON object, got array"},
		{"empty", ``, 400, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, must(http.NewRequest("POST", ts.URL+"/test/echo", strings.NewReader(c.body))))
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.status != 200 {
				if p := decodeProblem(t, res); !strings.Contains(p.Detail, c.detail) {
					t.Fatalf("detail %q does not say %q", p.Detail, c.detail)
				}
			}
		})
	}
	// A chunked body (no Content-Length) over the cap is also refused.
	req := must(http.NewRequest("POST", ts.URL+"/test/echo", io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("y", 200)+`"}`))))
	req.ContentLength = -1
	if res := do(t, req); res.StatusCode != 413 {
		t.Fatalf("chunked over cap: %d", res.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{CORSOrigins: []string{"https://shop.example"}})
	preflight := func(origin string) *http.Response {
		req := must(http.NewRequest("OPTIONS", ts.URL+"/api/health", nil))
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "Content-Type, Authorization")
		return do(t, req)
	}
	res := preflight("https://shop.example")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		res.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		res.Header.Get("Access-Control-Allow-Headers") != "Content-Type, Authorization" {
		t.Fatalf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
		t.Fatalf("no Vary: Origin: %v", res.Header)
	}
	res = preflight("https://evil.example")
	if res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("denied origin got CORS headers: %v", res.Header)
	}
	req := must(http.NewRequest("GET", ts.URL+"/healthz", nil))
	req.Header.Set("Origin", "https://shop.example")
	if got := do(t, req).Header.Get("Access-Control-Allow-Origin"); got != "https://shop.example" {
		t.Fatalf("simple request ACAO %q", got)
	}

	// A wildcard allowlist never combines "*" with credentials.
	ts2, _, _ := newTestServer(t, Options{CORSOrigins: []string{"*"}})
	req = must(http.NewRequest("GET", ts2.URL+"/healthz", nil))
	req.Header.Set("Origin", "https://any.example")
	res = do(t, req)
	if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("wildcard: %v", res.Header)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{RateLimit: 1, RateBurst: 3, Auth: fakeAuth{"tok-a": {UserID: "alice", Role: plaza.RoleUser}}})
	get := func(path, token string) *http.Response {
		req := must(http.NewRequest("GET", ts.URL+path, nil))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return do(t, req)
	}
	for i := range 3 {
		res := get("/test/whoami", "")
		if res.StatusCode != 200 {
			t.Fatalf("request %d within burst: %d", i, res.StatusCode)
		}
		if res.Header.Get("RateLimit-Limit") != "3" || res.Header.Get("RateLimit-Remaining") != string(rune('2'-i)) {
			t.Fatalf("request %d headers: %v", i, res.Header)
		}
	}
	res := get("/test/whoami", "")
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "1" || res.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("over the limit: %d %v", res.StatusCode, res.Header)
	}
	if p := decodeProblem(t, res); p.Code != plaza.ERateLimited {
		t.Fatalf("code %q", p.Code)
	}
	// An authenticated user from the same IP has a bucket of their own.
	if res := get("/test/whoami", "tok-a"); res.StatusCode != 200 {
		t.Fatalf("user bucket: %d", res.StatusCode)
	}
	// Probes and metrics are never limited.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/health"} {
		if res := get(p, ""); res.StatusCode != 200 {
			t.Fatalf("%s limited: %d", p, res.StatusCode)
		}
	}
}

func TestClientIPTrustsForwardedForOnlyFromProxies(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.9, 10.1.2.3")
	r.RemoteAddr = "10.0.0.1:5555"
	if got := clientIP(r, proxies); got != "203.0.113.9" {
		t.Fatalf("via proxy: %q", got)
	}
	r.RemoteAddr = "198.51.100.7:5555"
	if got := clientIP(r, proxies); got != "198.51.100.7" {
		t.Fatalf("spoofed XFF believed: %q", got)
	}
}

func TestBadBearerTokenIs401WithChallenge(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{Auth: fakeAuth{"good": {UserID: "u1"}}})
	for _, h := range []string{"Bearer bad", "Basic abc", "Bearer "} {
		req := must(http.NewRequest("GET", ts.URL+"/test/whoami", nil))
		req.Header.Set("Authorization", h)
		res := do(t, req)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%q: %d %v", h, res.StatusCode, res.Header)
		}
		decodeProblem(t, res)
	}
	req := must(http.NewRequest("GET", ts.URL+"/test/whoami", nil))
	req.Header.Set("Authorization", "Bearer good")
	var body map[string]string
	json.NewDecoder(do(t, req).Body).Decode(&body)
	if body["user"] != "u1" {
		t.Fatalf("principal not in context: %v", body)
	}
}

func TestStreamingAndHijackPassThroughTheChain(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	res := do(t, must(http.NewRequest("GET", ts.URL+"/test/stream", nil)))
	if res.StatusCode != 200 {
		t.Fatalf("stream status %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "data: a\n" {
		t.Fatalf("first streamed line %q %v", first, err)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /test/hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(got), "HTTP/1.1 101") || !strings.HasSuffix(string(got), "hello") {
		t.Fatalf("hijacked response %q", got)
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	do(t, must(http.NewRequest("GET", ts.URL+"/healthz", nil)))
	do(t, must(http.NewRequest("GET", ts.URL+"/api/random-"+plaza.NewRequestID(), nil)))
	body, _ := io.ReadAll(do(t, must(http.NewRequest("GET", ts.URL+"/metrics", nil))).Body)
	text := string(body)
	for _, want := range []string{
		`plaza_http_requests_total{method="GET",route="/healthz",status="2xx"} 1`,
		`plaza_http_requests_total{method="GET",route="unmatched",status="4xx"} 1`,
		"plaza_http_requests_in_flight",
		"plaza_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "/api/random-") {
		t.Fatal("raw path used as a label")
	}
}

func TestHealthReportsDependencies(t *testing.T) {
	t.Parallel()
	down := func(context.Context) error { return io.ErrUnexpectedEOF }
	up := func(context.Context) error { return nil }
	cases := []struct {
		name   string
		checks []Check
		status int
		want   string
	}{
		{"all up", []Check{{Name: "store", Critical: true, Probe: up}, {Name: "cache", Probe: up}}, 200, "ok"},
		{"cache down", []Check{{Name: "store", Critical: true, Probe: up}, {Name: "cache", Probe: down}}, 200, "degraded"},
		{"store down", []Check{{Name: "store", Critical: true, Probe: down}, {Name: "cache", Probe: up}}, 503, "down"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, s, _ := newTestServer(t, Options{Checks: c.checks})
			for _, path := range []string{"/readyz", "/api/health"} {
				res := do(t, must(http.NewRequest("GET", ts.URL+path, nil)))
				var rep healthReport
				json.NewDecoder(res.Body).Decode(&rep)
				if res.StatusCode != c.status || rep.Status != c.want || len(rep.Checks) != 2 {
					t.Fatalf("%s: %d %+v", path, res.StatusCode, rep)
				}
			}
			s.SetDraining()
			if res := do(t, must(http.NewRequest("GET", ts.URL+"/readyz", nil))); res.StatusCode != 503 {
				t.Fatalf("draining readyz %d", res.StatusCode)
			}
			if res := do(t, must(http.NewRequest("GET", ts.URL+"/healthz", nil))); res.StatusCode != 200 {
				t.Fatalf("draining healthz %d", res.StatusCode)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRateLimitHeadersOfABigBucket: the RateLimit-* values are right whatever their size,
// near a big burst (where they come from a table made once) and far from it.
func TestRateLimitHeadersOfABigBucket(t *testing.T) {
	t.Parallel()
	const burst = 20_000
	ts, _, _ := newTestServer(t, Options{RateLimit: 0.001, RateBurst: burst})
	for i := range 3 {
		res := do(t, must(http.NewRequest("GET", ts.URL+"/test/whoami", nil)))
		if got, want := res.Header.Get("RateLimit-Remaining"), strconv.Itoa(burst-1-i); got != want || res.Header.Get("RateLimit-Limit") != "20000" {
			t.Fatalf("request %d: RateLimit-Remaining %q, want %s (%v)", i, got, want, res.Header)
		}
		// The bucket refills one token in 1,000 s: i+1 tokens in (i+1)×1,000 s.
		if got, want := res.Header.Get("RateLimit-Reset"), strconv.Itoa((i+1)*1000); got != want {
			t.Fatalf("request %d: RateLimit-Reset %q, want %s", i, got, want)
		}
	}
	for _, c := range []struct{ lo, hi, x int }{{0, 10, 0}, {0, 10, 10}, {0, 10, 11}, {-5, 3, -1}, {15_904, 20_000, 15_903}, {15_904, 20_000, 15_904}, {15_904, 20_000, 20_000}, {15_904, 20_000, 20_001}} {
		if got := numbers(c.lo, c.hi).of(c.x); len(got) != 1 || got[0] != strconv.Itoa(c.x) {
			t.Fatalf("numbers(%d, %d).of(%d) = %q", c.lo, c.hi, c.x, got)
		}
	}
}

// TestRequestContextCarriesClientAndID: what the front of the chain puts in a request's
// context (the client's address, as the services' throttles read it, and the request ID)
// reaches the handler, through contexts it derives too.
func TestRequestContextCarriesClientAndID(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	ts, _, _ := newTestServer(t, Options{TrustedProxies: loopback})
	for _, c := range []struct{ forwarded, id, wantIP string }{
		{"203.0.113.5", "req-one", "203.0.113.5"},
		{"", "req-two", "127.0.0.1"},
	} {
		req := must(http.NewRequest("GET", ts.URL+"/test/whoami", nil))
		if c.forwarded != "" {
			req.Header.Set("X-Forwarded-For", c.forwarded)
		}
		req.Header.Set("X-Request-ID", c.id)
		res := do(t, req)
		var got map[string]string
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got["ip"] != c.wantIP || got["request_id"] != c.id || res.Header.Get("X-Request-ID") != c.id {
			t.Fatalf("forwarded %q: handler saw %v, response ID %q", c.forwarded, got, res.Header.Get("X-Request-ID"))
		}
	}
}

// TestAKeptRequestContextLetsTheWriterGo: a handler that keeps its request's context
// after returning (as a WebSocket or an event stream does for the connection's life) does
// not keep the response writer, and with it net/http's connection and buffers, alive.
func TestAKeptRequestContextLetsTheWriterGo(t *testing.T) {
	s := New(Options{})
	var kept context.Context
	s.handle("GET /test/keep", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = context.WithoutCancel(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	w := &discardWriter{h: http.Header{}}
	gone := weak.Make(w)
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/test/keep", nil))
	w = nil
	runtime.GC()
	if gone.Value() != nil {
		t.Fatal("the response writer is still reachable from the kept request context")
	}
	if RequestIDFrom(kept) == "" {
		t.Fatal("the kept context lost its request ID")
	}
}
