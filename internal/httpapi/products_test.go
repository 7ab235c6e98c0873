package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/etag"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// The transport's job is mapping: who is asking comes from a fake authenticator, what
// they may do from the real catalog service over a real store.
var catalogAuth = fakeAuth{
	"admin-token": {UserID: "admin-1", Role: plaza.RoleAdmin},
	"user-token":  {UserID: "user-1", Role: plaza.RoleUser},
}

var roles = []struct{ name, token string }{{"anonymous", ""}, {"user", "user-token"}, {"admin", "admin-token"}}

func newCatalogServer(t *testing.T, db *store.DB) *httptest.Server {
	t.Helper()
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	svc, err := catalog.New(catalog.Options{Store: db.Products()})
	if err != nil {
		t.Fatal(err)
	}
	products := cached.New(svc, cache.New(cache.NewMemory(1000), cache.Options{Bus: b}), nil)
	ts, _, _ := newTestServer(t, Options{Auth: catalogAuth, Catalog: products})
	return ts
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

func (c call) do(t *testing.T, ts *httptest.Server) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, ts.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	res := do(t, req)
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body = io.NopCloser(bytes.NewReader(b)) // decodeProblem reads it again
	return res, b
}

const laptopJSON = `{"name":"Helix Gaming Laptop 17","description":"Fast.","price_cents":199999,
	"category":"electronics","subcategory":"laptops/gaming","stock":4}`

func create(t *testing.T, ts *httptest.Server, body string) catalog.Product {
	t.Helper()
	res, b := call{method: "POST", path: "/api/products", token: "admin-token", body: body}.do(t, ts)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	var p catalog.Product
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func withPath(category, sub string) string {
	return `{"name":"Item ` + category + " " + strings.ReplaceAll(sub, "/", " ") + `","price_cents":100,"category":"` + category + `","subcategory":"` + sub + `"}`
}

// TestCatalogRoutesByRole: every route, as anonymous, user and admin, on both backends.
func TestCatalogRoutesByRole(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ts := newCatalogServer(t, db)
		for _, role := range roles {
			t.Run(role.name, func(t *testing.T) {
				p := create(t, ts, laptopJSON)
				item := "/api/products/" + p.ID
				write := func(ok int) int {
					switch role.name {
					case "anonymous":
						return http.StatusUnauthorized
					case "user":
						return http.StatusForbidden
					}
					return ok
				}
				for _, tc := range []struct {
					c    call
					want int
				}{
					{call{method: "GET", path: "/api/products"}, 200},
					{call{method: "GET", path: "/api/products?category=electronics&sort=price&limit=5"}, 200},
					{call{method: "GET", path: item}, 200},
					{call{method: "GET", path: "/api/products/electronics/laptops/gaming"}, 200},
					{call{method: "GET", path: "/api/categories"}, 200},
					{call{method: "POST", path: "/api/products", body: laptopJSON}, write(201)},
					{call{method: "PUT", path: item, body: laptopJSON}, write(200)},
					{call{method: "PATCH", path: item, body: `{"stock":1}`}, write(200)},
					{call{method: "DELETE", path: item}, write(204)},
				} {
					tc.c.token = role.token
					res, body := tc.c.do(t, ts)
					if res.StatusCode != tc.want {
						t.Errorf("%s %s as %s: %d %s; want %d", tc.c.method, tc.c.path, role.name, res.StatusCode, body, tc.want)
						continue
					}
					switch res.StatusCode {
					case 401:
						if res.Header.Get("WWW-Authenticate") == "" {
							t.Errorf("%s %s: 401 without WWW-Authenticate", tc.c.method, tc.c.path)
						}
					case 201:
						var created catalog.Product
						json.Unmarshal(body, &created)
						if res.Header.Get("Location") != "/api/products/"+created.ID || res.Header.Get("ETag") != etag.Make(created.ID, created.Version) {
							t.Errorf("201 Location %q ETag %q for %s", res.Header.Get("Location"), res.Header.Get("ETag"), created.ID)
						}
					}
					if tc.c.method == "GET" && res.Header.Get("Cache-Control") == "" {
						t.Errorf("GET %s: no Cache-Control", tc.c.path)
					}
				}
				res, _ := call{method: "GET", path: item}.do(t, ts)
				if want := map[bool]int{true: 404, false: 200}[role.name == "admin"]; res.StatusCode != want {
					t.Errorf("GET after DELETE as %s: %d; want %d", role.name, res.StatusCode, want)
				}
			})
		}
	})
}

func TestProductETagAndCache(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ts := newCatalogServer(t, db)
		p := create(t, ts, laptopJSON)
		item := "/api/products/" + p.ID

		res, body := call{method: "GET", path: item}.do(t, ts)
		tag := res.Header.Get("ETag")
		if res.StatusCode != 200 || tag != etag.Make(p.ID, p.Version) || res.Header.Get("X-Cache") != "MISS" ||
			res.Header.Get("Cache-Control") != productCacheControl || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("first GET: %d %v", res.StatusCode, res.Header)
		}
		var got catalog.Product
		if err := json.Unmarshal(body, &got); err != nil || got != p {
			t.Fatalf("GET body %s", body)
		}
		res, body2 := call{method: "GET", path: item}.do(t, ts)
		if res.Header.Get("X-Cache") != "HIT" || string(body2) != string(body) {
			t.Fatalf("second GET: X-Cache %q", res.Header.Get("X-Cache"))
		}
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			res, b := call{method: "GET", path: item, header: map[string]string{"If-None-Match": inm}}.do(t, ts)
			if res.StatusCode != 304 || len(b) != 0 || res.Header.Get("ETag") != tag {
				t.Fatalf("If-None-Match %s: %d, %d bytes, ETag %q", inm, res.StatusCode, len(b), res.Header.Get("ETag"))
			}
		}
		if res, _ := (call{method: "GET", path: item, header: map[string]string{"If-None-Match": `"stale"`}}).do(t, ts); res.StatusCode != 200 {
			t.Fatalf("If-None-Match with another tag: %d", res.StatusCode)
		}

		res, body = call{method: "PUT", path: item, token: "admin-token", body: laptopJSON, header: map[string]string{"If-Match": tag}}.do(t, ts)
		newTag := res.Header.Get("ETag")
		if res.StatusCode != 200 || newTag == tag || newTag == "" {
			t.Fatalf("PUT with If-Match current: %d %s", res.StatusCode, body)
		}
		for _, c := range []call{
			{method: "PUT", path: item, body: laptopJSON},
			{method: "PATCH", path: item, body: `{"stock":2}`},
			{method: "DELETE", path: item},
		} {
			c.token, c.header = "admin-token", map[string]string{"If-Match": tag}
			res, _ := c.do(t, ts)
			if res.StatusCode != 412 {
				t.Fatalf("%s with a stale If-Match: %d; want 412", c.method, res.StatusCode)
			}
			if p := decodeProblem(t, res); p.Code != plaza.EPreconditionFailed {
				t.Fatalf("412 code %q", p.Code)
			}
		}
		res, _ = call{method: "GET", path: item}.do(t, ts)
		if res.Header.Get("X-Cache") != "MISS" || res.Header.Get("ETag") != newTag {
			t.Fatalf("GET after update: X-Cache %q ETag %q; want MISS %s", res.Header.Get("X-Cache"), res.Header.Get("ETag"), newTag)
		}
		if res, _ := (call{method: "GET", path: item, header: map[string]string{"If-None-Match": tag}}).do(t, ts); res.StatusCode != 200 {
			t.Fatalf("If-None-Match with the old ETag after an update: %d; want 200", res.StatusCode)
		}
		res, _ = call{method: "DELETE", path: item, token: "admin-token", header: map[string]string{"If-Match": newTag}}.do(t, ts)
		if res.StatusCode != 204 {
			t.Fatalf("DELETE with the current ETag: %d", res.StatusCode)
		}
		res, _ = call{method: "GET", path: item}.do(t, ts)
		if res.StatusCode != 404 || decodeProblem(t, res).Code != plaza.ENotFound {
			t.Fatalf("GET after DELETE: %d", res.StatusCode)
		}
	})
}

func TestProductPatch(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ts := newCatalogServer(t, db)
	p := create(t, ts, laptopJSON)
	item := "/api/products/" + p.ID
	patch := func(body string) (*http.Response, []byte) {
		return call{method: "PATCH", path: item, token: "admin-token", body: body,
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}.do(t, ts)
	}
	res, body := patch(`{"price_cents": 149999, "description": null}`)
	var got catalog.Product
	json.Unmarshal(body, &got)
	if res.StatusCode != 200 || got.PriceCents != 149999 || got.Description != "" || got.Name != p.Name || got.Version != 2 {
		t.Fatalf("merge patch: %d %s", res.StatusCode, body)
	}
	for _, tc := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"id": "other"}`, 400, "id"},
		{`{"version": 9}`, 400, "version"},
		{`{"colour": "red"}`, 400, "colour"},
		{`{"price_cents": "cheap"}`, 400, "price_cents"},
		{`[1, 2]`, 400, ""},
		{`{"price_cents": null}`, 422, "price_cents"},
		{`{"stock": -1}`, 422, "stock"},
		{`{"subcategory": "Laptops"}`, 422, "subcategory"},
	} {
		res, _ := patch(tc.body)
		if res.StatusCode != tc.status {
			t.Errorf("PATCH %s: %d; want %d", tc.body, res.StatusCode, tc.status)
			continue
		}
		pr := decodeProblem(t, res)
		if tc.field != "" && (len(pr.Errors) == 0 || pr.Errors[0].Field != tc.field) {
			t.Errorf("PATCH %s: errors %+v; want field %s", tc.body, pr.Errors, tc.field)
		}
	}
	res, _ = call{method: "PATCH", path: item, token: "admin-token", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}.do(t, ts)
	if res.StatusCode != 400 {
		t.Fatalf("PATCH as text/plain: %d", res.StatusCode)
	}
}

// TestCategoryRoute: /api/products/{category}/{subcategory...} at depths 0 to 3, and the
// rule that one segment is always an ID.
func TestCategoryRoute(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ts := newCatalogServer(t, db)
		for _, path := range [][2]string{
			{"electronics", ""}, {"electronics", "laptops"}, {"electronics", "laptops/gaming"},
			{"electronics", "laptops/gaming/rgb"}, {"electronics", "laptopsx"}, {"home", "laptops"},
		} {
			create(t, ts, withPath(path[0], path[1]))
		}
		for _, tc := range []struct {
			path string
			want int
		}{
			{"/api/products/electronics/", 5},
			{"/api/products/electronics/laptops", 3},
			{"/api/products/electronics/laptops/", 3},
			{"/api/products/electronics/laptops/gaming", 2},
			{"/api/products/electronics/laptops/gaming/rgb", 1},
			{"/api/products/electronics/phones", 0},
			{"/api/products/electronics/laptops?limit=2", 2},
			{"/api/products/home/?q=" + url.QueryEscape("item home"), 1},
		} {
			res, body := call{method: "GET", path: tc.path}.do(t, ts)
			var page struct {
				Items      []catalog.Product `json:"items"`
				NextCursor string            `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &page); err != nil || res.StatusCode != 200 || len(page.Items) != tc.want || page.Items == nil {
				t.Errorf("GET %s: %d, %d items (%s); want %d", tc.path, res.StatusCode, len(page.Items), body, tc.want)
			}
			if strings.Contains(tc.path, "limit=2") {
				res, body := call{method: "GET", path: tc.path + "&cursor=" + page.NextCursor}.do(t, ts)
				var next struct {
					Items      []catalog.Product `json:"items"`
					NextCursor string            `json:"next_cursor"`
				}
				json.Unmarshal(body, &next)
				if res.StatusCode != 200 || len(next.Items) != 1 || next.NextCursor != "" {
					t.Errorf("second page of %s: %d %s", tc.path, res.StatusCode, body)
				}
			}
		}
		res, _ := call{method: "GET", path: "/api/products/electronics"}.do(t, ts)
		if res.StatusCode != 404 {
			t.Fatalf("a single segment is an ID: GET /api/products/electronics = %d; want 404", res.StatusCode)
		}
		res, _ = call{method: "GET", path: "/api/products/electronics/laptops?subcategory=x"}.do(t, ts)
		if res.StatusCode != 400 || decodeProblem(t, res).Errors[0].Field != "subcategory" {
			t.Fatalf("subcategory in path and query: %d", res.StatusCode)
		}
		res, _ = call{method: "GET", path: "/api/products/Electronics/"}.do(t, ts)
		if res.StatusCode != 400 || decodeProblem(t, res).Errors[0].Field != "category" {
			t.Fatalf("bad category slug in the path: %d", res.StatusCode)
		}
	})
}

func TestProductBadInput(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ts := newCatalogServer(t, db)
	create(t, ts, laptopJSON)
	for query, field := range map[string]string{
		"cursor=garbage!":         "cursor",
		"sort=popularity":         "sort",
		"min_price=ten":           "min_price",
		"max_price=1.5":           "max_price",
		"min_price=-1":            "min_price",
		"limit=101":               "limit",
		"limit=0":                 "limit",
		"in_stock=maybe":          "in_stock",
		"category=Not%20A%20Slug": "category",
	} {
		res, _ := call{method: "GET", path: "/api/products?" + query}.do(t, ts)
		if res.StatusCode != 400 {
			t.Errorf("?%s: %d; want 400", query, res.StatusCode)
			continue
		}
		if p := decodeProblem(t, res); p.Code != plaza.EBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Errorf("?%s: %+v; want bad_request naming %s", query, p, field)
		}
	}
	for _, q := range []string{`"unterminated`, `laptop*`, `-laptop`, `laptop NEAR gaming`, `(gaming) OR 1=1`,
		`'; DROP TABLE products; --`, `%`, `_`, `\`, `NOT`} {
		res, body := call{method: "GET", path: "/api/products?q=" + url.QueryEscape(q)}.do(t, ts)
		if res.StatusCode != 200 {
			t.Errorf("q=%s: %d %s", q, res.StatusCode, body)
		}
	}
	res, body := call{method: "GET", path: "/api/products?q=" + url.QueryEscape(`"gaming" laptop*`)}.do(t, ts)
	if res.StatusCode != 200 || !strings.Contains(string(body), "Helix") {
		t.Fatalf("quoted search words are still words: %d %s", res.StatusCode, body)
	}

	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"name":"","price_cents":-5,"category":"electronics","stock":-1}`, []string{"name", "price_cents", "stock"}},
		{`{"name":"x","price_cents":5,"category":"Bad Slug","subcategory":"a/b/c/d/e/f"}`, []string{"category", "subcategory"}},
		{`{"name":"x","price_cents":5,"category":"toys","currency":"EURO"}`, []string{"currency"}},
	} {
		res, _ := call{method: "POST", path: "/api/products", token: "admin-token", body: tc.body}.do(t, ts)
		if res.StatusCode != 422 {
			t.Errorf("POST %s: %d; want 422", tc.body, res.StatusCode)
			continue
		}
		p := decodeProblem(t, res)
		var got []string
		for _, f := range p.Errors {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("POST %s: fields %v; want %v", tc.body, got, tc.fields)
		}
	}
	res, _ = call{method: "POST", path: "/api/products", token: "admin-token", body: `{"name":"x","price_cents":1.5,"category":"toys"}`}.do(t, ts)
	if res.StatusCode != 400 {
		t.Fatalf("fractional cents: %d; want 400", res.StatusCode)
	}
}

func TestCategoriesRoute(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ts := newCatalogServer(t, db)
	res, body := call{method: "GET", path: "/api/categories"}.do(t, ts)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != "[]" || res.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("empty tree: %d %s", res.StatusCode, body)
	}
	create(t, ts, withPath("electronics", "laptops/gaming"))
	create(t, ts, withPath("electronics", "phones"))
	res, body = call{method: "GET", path: "/api/categories"}.do(t, ts)
	var tree []catalog.Category
	if err := json.Unmarshal(body, &tree); err != nil || res.Header.Get("Cache-Control") != listCacheControl || len(tree) != 1 || tree[0].Count != 2 || len(tree[0].Children) != 2 ||
		tree[0].Children[0].Children[0].Path != "electronics/laptops/gaming" {
		t.Fatalf("tree after creates: %s", body)
	}
	if res, _ := (call{method: "GET", path: "/api/categories"}).do(t, ts); res.Header.Get("X-Cache") != "HIT" {
		t.Fatal("second tree read missed the cache")
	}
}

// TestProductReadsCarryContentLength: a product read, small or bigger than net/http's
// response buffer, served from the store or the cache, GET or HEAD, says its length
// rather than being chunked.
func TestProductReadsCarryContentLength(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ts := newCatalogServer(t, db)
		small := create(t, ts, laptopJSON)
		big := create(t, ts, `{"name":"Long read","description":"`+strings.Repeat("word ", 900)+`","price_cents":100,"category":"books"}`)
		for _, p := range []catalog.Product{small, big} {
			for _, cache := range []string{"MISS", "HIT"} {
				res, body := call{method: "GET", path: "/api/products/" + p.ID}.do(t, ts)
				if res.StatusCode != 200 || res.Header.Get("X-Cache") != cache || res.ContentLength != int64(len(body)) ||
					len(res.TransferEncoding) != 0 || len(body) < 100 {
					t.Fatalf("GET %s (%s): %d, Content-Length %d for %d bytes, Transfer-Encoding %v", p.Name, cache, res.StatusCode, res.ContentLength, len(body), res.TransferEncoding)
				}
				head, _ := call{method: "HEAD", path: "/api/products/" + p.ID}.do(t, ts)
				if head.StatusCode != 200 || head.ContentLength != int64(len(body)) {
					t.Fatalf("HEAD %s: %d, Content-Length %d, want %d", p.Name, head.StatusCode, head.ContentLength, len(body))
				}
			}
		}
	})
}
