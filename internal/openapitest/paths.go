package openapitest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// pathLookup finds a request's path in the document the way the server's http.ServeMux
// routes it. The validator's own lookup matches segment by segment, which OpenAPI path
// templates also mean; but one Plaza route takes the rest of the path
// (/api/products/{category}/{subcategory...}, subcategory holding slashes), which OpenAPI
// cannot say. The document marks such a parameter `x-rest-of-path: true`, and this lookup
// gives it the ServeMux meaning.
type pathLookup struct {
	mux   *http.ServeMux
	items map[string]*v3.PathItem // by ServeMux pattern
	paths map[string]string       // document path by ServeMux pattern
}

func newPathLookup(doc *v3.Document) (*pathLookup, error) {
	l := &pathLookup{mux: http.NewServeMux(), items: map[string]*v3.PathItem{}, paths: map[string]string{}}
	for path, item := range doc.Paths.PathItems.FromOldest() {
		pattern := GoPattern(path, restOfPath(item))
		if _, dup := l.items[pattern]; dup {
			return nil, fmt.Errorf("openapitest: two document paths route as %q", pattern)
		}
		l.items[pattern], l.paths[pattern] = item, path
		l.mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	}
	return l, nil
}

// GoPattern is the ServeMux pattern (without a method) of a document path: a trailing
// slash matches only itself, and a rest-of-path parameter takes the remaining segments.
func GoPattern(path string, rest map[string]bool) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, "{"); ok && rest[strings.TrimSuffix(name, "}")] {
			segs[i] = "{" + strings.TrimSuffix(name, "}") + "...}"
		}
	}
	p := strings.Join(segs, "/")
	if strings.HasSuffix(p, "/") {
		p += "{$}"
	}
	return p
}

// restOfPath names the path parameters of item marked x-rest-of-path.
func restOfPath(item *v3.PathItem) map[string]bool {
	rest := map[string]bool{}
	params := append([]*v3.Parameter(nil), item.Parameters...)
	for _, op := range item.GetOperations().FromOldest() {
		params = append(params, op.Parameters...)
	}
	for _, p := range params {
		if p.In == "path" && p.Extensions != nil && p.Extensions.GetOrZero("x-rest-of-path") != nil {
			rest[p.Name] = true
		}
	}
	return rest
}

// Lookup implements radix.PathLookup.
func (l *pathLookup) Lookup(urlPath string) (*v3.PathItem, string, bool) {
	u, err := url.Parse(urlPath)
	if err != nil {
		return nil, "", false
	}
	_, pattern := l.mux.Handler(&http.Request{Method: http.MethodGet, URL: u, Host: "plaza.test"})
	item, ok := l.items[pattern]
	if !ok {
		return nil, "", false
	}
	return item, l.paths[pattern], true
}

// hasOperation reports whether the document has an operation for the request's method
// and path.
func hasOperation(req *http.Request) bool {
	v, err := newLookup()
	if err != nil {
		return false
	}
	item, _, ok := v.Lookup(req.URL.EscapedPath())
	if !ok {
		return false
	}
	_, ok = item.GetOperations().Get(strings.ToLower(req.Method))
	return ok
}

// restOfPathAsOneSegment rewrites req's path, when its route has a rest-of-path parameter,
// so that the parameter's value is one segment (its slashes escaped as %2F, which the
// server accepts as well): the validator reads path parameters segment by segment.
func restOfPathAsOneSegment(req *http.Request) error {
	l, err := newLookup()
	if err != nil {
		return err
	}
	_, pattern := l.mux.Handler(&http.Request{Method: http.MethodGet, URL: req.URL, Host: "plaza.test"})
	i := strings.Index(pattern, "...}")
	if i < 0 {
		return nil
	}
	fixed := strings.Count(pattern[:i], "/") // segments before the rest-of-path parameter
	segs := strings.SplitN(req.URL.EscapedPath(), "/", fixed+1)
	if len(segs) <= fixed {
		return nil
	}
	segs[fixed] = strings.ReplaceAll(segs[fixed], "/", "%2F")
	u := *req.URL
	if err := setEscapedPath(&u, strings.Join(segs, "/")); err != nil {
		return err
	}
	req.URL = &u
	return nil
}

func setEscapedPath(u *url.URL, escaped string) error {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = p, escaped
	return nil
}
