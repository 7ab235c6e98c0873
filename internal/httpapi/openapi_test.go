package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"plaza/api/openapi"
	"plaza/internal/openapitest"
)

// Every request these tests make, and every answer, is validated against
// api/openapi/openapi.yaml; the test server's own /test/ routes are not part of the API.
func TestMain(m *testing.M) { openapitest.Main(m, "/test/") }

var pathParam = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

// TestEveryRouteIsDocumented walks the routes the server registers and requires an
// operation for each in the document, and a route for each operation.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := openapitest.Document()
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if len(s.patterns) < 30 {
		t.Fatalf("only %d routes registered: %v", len(s.patterns), s.patterns)
	}
	for _, pattern := range s.patterns {
		method, path, _ := strings.Cut(pattern, " ")
		docPath := pathParam.ReplaceAllString(path, "{$1}")
		item, ok := doc.Paths.PathItems.Get(docPath)
		if !ok {
			t.Errorf("route %q: no path %q in api/openapi/openapi.yaml", pattern, docPath)
			continue
		}
		if _, ok := item.GetOperations().Get(strings.ToLower(method)); !ok {
			t.Errorf("route %q: path %q has no %s operation in api/openapi/openapi.yaml", pattern, docPath, method)
		}
	}
	for path, item := range doc.Paths.PathItems.FromOldest() {
		concrete := pathParam.ReplaceAllString(path, "x")
		for method := range item.GetOperations().FromOldest() {
			req := httptest.NewRequest(strings.ToUpper(method), concrete, nil)
			if _, pattern := s.mux.Handler(req); pattern == "" {
				t.Errorf("%s %s is documented but no route serves it", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPIDocumentServed: both forms, the same document, revalidated by ETag.
func TestOpenAPIDocumentServed(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTestServer(t, Options{})
	var fromYAML any
	if err := yaml.Unmarshal(openapi.YAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(fromYAML)

	res := do(t, must(http.NewRequest("GET", ts.URL+"/openapi.json", nil)))
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || string(body) != string(want) {
		t.Fatalf("/openapi.json: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	res = do(t, must(http.NewRequest("GET", ts.URL+"/openapi.yaml", nil)))
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(body) != string(openapi.YAML) {
		t.Fatalf("/openapi.yaml: %d, %d bytes", res.StatusCode, len(body))
	}
	req := must(http.NewRequest("GET", ts.URL+"/openapi.yaml", nil))
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res := do(t, req); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the ETag: %d, want 304", res.StatusCode)
	}
}
