package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"plaza/internal/openapitest"
)

// The web UI's pages and assets are not API operations: they are fetched without the
// document's validation.
var uiClient = &http.Client{Transport: openapitest.Unvalidated}

func uiGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := uiClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func strictCSP(t *testing.T, what string, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("%s: CSP %q allows inline code or another origin", what, csp)
	}
}

var assetRef = regexp.MustCompile(`/static/([a-z]+)\.([0-9a-f]{10})\.(js|css)`)

func TestWebAppServedWithHashedAssets(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	for _, path := range []string{"/", "/c/electronics/laptops", "/p/some-id", "/chat/general"} {
		res, body := uiGet(t, ts.URL+path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			res.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(body, `type="module"`) {
			t.Fatalf("GET %s: %d %v", path, res.StatusCode, res.Header)
		}
		strictCSP(t, path, res)
		if strings.Contains(body, "<script>") || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
			t.Fatalf("GET %s: the page has inline script", path)
		}
	}
	_, page := uiGet(t, ts.URL+"/")
	refs := assetRef.FindAllStringSubmatch(page, -1)
	if len(refs) != 2 {
		t.Fatalf("index.html references %v, want the app's module and its stylesheet", refs)
	}
	// Follow the module graph from the entry: every asset is named by its content's hash and
	// cached for a year.
	seen := map[string]bool{}
	for len(refs) > 0 {
		ref := refs[0]
		refs = refs[1:]
		if seen[ref[0]] {
			continue
		}
		seen[ref[0]] = true
		res, body := uiGet(t, ts.URL+ref[0])
		sum := sha256.Sum256([]byte(body))
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || hex.EncodeToString(sum[:5]) != ref[2] {
			t.Fatalf("GET %s: %d %q, content hash %x", ref[0], res.StatusCode, res.Header.Get("Cache-Control"), sum[:5])
		}
		for _, m := range regexp.MustCompile(`"\./([a-z]+\.[0-9a-f]{10}\.js)"`).FindAllStringSubmatch(body, -1) {
			refs = append(refs, assetRef.FindStringSubmatch("/static/"+m[1]))
		}
	}
	if len(seen) < 8 {
		t.Fatalf("reached only %d assets from the entry module", len(seen))
	}
	if res, _ := uiGet(t, ts.URL+"/static/app.0000000000.js"); res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown asset: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestAPIPathsStayAPI: the app's catch-all never answers under /api/, whatever the method.
func TestAPIPathsStayAPI(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	for _, method := range []string{"GET", "POST", "DELETE"} {
		res := do(t, must(http.NewRequest(method, ts.URL+"/api/no-such-thing", nil)))
		if res.StatusCode != 404 {
			t.Fatalf("%s /api/no-such-thing: %d, want 404", method, res.StatusCode)
		}
		decodeProblem(t, res)
	}
	res := do(t, must(http.NewRequest("PUT", ts.URL+"/api/health", nil)))
	if res.StatusCode != 405 || !strings.Contains(res.Header.Get("Allow"), "GET") {
		t.Fatalf("PUT /api/health: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestSwaggerUIServedOffline(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	res, body := uiGet(t, ts.URL+"/swagger/")
	if res.StatusCode != 200 || !strings.Contains(body, `src="swagger-init.js"`) || strings.Contains(body, "//cdn") || strings.Contains(body, "https://") {
		t.Fatalf("/swagger/: %d %s", res.StatusCode, body)
	}
	strictCSP(t, "/swagger/", res)
	for _, f := range []string{"swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"} {
		res, body := uiGet(t, ts.URL+"/swagger/"+f)
		if res.StatusCode != 200 || len(body) == 0 || res.Header.Get("ETag") == "" {
			t.Fatalf("/swagger/%s: %d", f, res.StatusCode)
		}
	}
	if _, init := uiGet(t, ts.URL+"/swagger/swagger-init.js"); !strings.Contains(init, `"/openapi.json"`) {
		t.Fatalf("the initializer does not load this server's document: %s", init)
	}
}
