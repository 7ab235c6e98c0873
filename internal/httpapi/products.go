package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"plaza/internal/catalog"
	"plaza/internal/etag"
	"plaza/internal/plaza"
)

// Cache-Control of catalog reads; none depends on who asks, so shared caches may keep them.
// A product is revalidated on every use (its ETag makes that a cheap 304); lists and the
// tree may be a few seconds old, which is what a shop page can live with.
const (
	productCacheControl = "public, max-age=0, must-revalidate"
	listCacheControl    = "public, max-age=5"
)

func (s *Server) handleProductGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc, err := s.catalog.ProductJSON(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		// Canonical keys and shared values, as securityHeaders sets its own (see there).
		h := w.Header()
		h["Etag"] = []string{enc.ETag}
		h["Cache-Control"] = hdrProductCache
		h["X-Cache"] = cacheStatus(enc.Hit)
		if noneMatch(r.Header.Values("If-None-Match"), enc.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeRaw(w, http.StatusOK, enc.JSON)
	})
}

func (s *Server) handleCategories() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc, err := s.catalog.CategoriesJSON(r.Context())
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		h := w.Header()
		h["Cache-Control"] = hdrListCache
		h["X-Cache"] = cacheStatus(enc.Hit)
		writeRaw(w, http.StatusOK, enc.JSON)
	})
}

// handleProductList serves the list and, with path values, the category route.
func (s *Server) handleProductList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := listFilter(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		page, err := s.catalog.List(r.Context(), f)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.Header().Set("Cache-Control", listCacheControl)
		encode(w, r, http.StatusOK, listOf(page))
	})
}

// listFilter reads the list's query parameters (and the category route's path). Values
// that do not parse are bad_request errors naming the parameter; the service checks the
// rest.
func listFilter(r *http.Request) (catalog.Filter, error) {
	q := r.URL.Query()
	page, err := pageParams(r)
	if err != nil {
		return catalog.Filter{}, err
	}
	f := catalog.Filter{
		Category: q.Get("category"), Subcategory: q.Get("subcategory"), Q: q.Get("q"),
		Sort: catalog.Sort(q.Get("sort")), Limit: page.Limit, Cursor: page.Cursor,
	}
	if category := r.PathValue("category"); category != "" {
		for _, name := range []string{"category", "subcategory"} {
			if q.Has(name) {
				return f, plaza.BadParam(name, name+" is given by the path on this route; leave the query parameter out")
			}
		}
		f.Category, f.Subcategory = category, r.PathValue("subcategory")
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"min_price", &f.MinPrice}, {"max_price", &f.MaxPrice}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, plaza.BadParam(p.name, p.name+" must be a whole number of cents")
			}
			*p.dst = &n
		}
	}
	if v := q.Get("in_stock"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, plaza.BadParam("in_stock", "in_stock must be true or false")
		}
		f.InStock = &b
	}
	return f, nil
}

func (s *Server) handleProductCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[catalog.Input](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		p, err := s.catalog.Create(r.Context(), in)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.Header().Set("Location", "/api/products/"+p.ID)
		writeProduct(w, r, http.StatusCreated, p)
	})
}

func (s *Server) handleProductReplace() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[catalog.Input](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		id := r.PathValue("id")
		p, err := s.catalog.Replace(r.Context(), id, in, ifMatch(r, id))
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		writeProduct(w, r, http.StatusOK, p)
	})
}

// handleProductPatch applies a JSON merge patch (RFC 7396) to the product's client fields
// and decodes the result as strictly as a PUT body (see mergePatch).
func (s *Server) handleProductPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		patch, err := readMergePatch(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		id := r.PathValue("id")
		p, err := s.catalog.Patch(r.Context(), id, ifMatch(r, id), func(cur catalog.Input) (catalog.Input, error) {
			return mergePatch[catalog.Input](cur, patch)
		})
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		writeProduct(w, r, http.StatusOK, p)
	})
}

func (s *Server) handleProductDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := s.catalog.Delete(r.Context(), id, ifMatch(r, id)); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// writeProduct answers a write with the product and its new ETag.
func writeProduct(w http.ResponseWriter, r *http.Request, status int, p catalog.Product) {
	w.Header().Set("ETag", etag.Make(p.ID, p.Version))
	w.Header().Set("Cache-Control", "no-store")
	encode(w, r, status, p)
}

// writeRaw writes an already encoded JSON body, with its Content-Length: set here for
// a big one, and by net/http itself for one that fits its response buffer (a body
// written whole before the handler returns), which costs no header entry to format,
// copy, sort and write.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	if len(body) >= netHTTPBuffer {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// netHTTPBuffer is the response buffer of net/http's server (bufferBeforeChunkingSize):
// a body shorter than it, written before the handler returns, gets a Content-Length
// without one in the header map.
const netHTTPBuffer = 2048

// Header values of the catalog's reads, shared like securityHeaders' (see there).
var (
	hdrProductCache = []string{productCacheControl}
	hdrListCache    = []string{listCacheControl}
	hdrJSON         = []string{"application/json"}
	hdrHit          = []string{"HIT"}
	hdrMiss         = []string{"MISS"}
)

// cacheStatus is the X-Cache value of a read.
func cacheStatus(hit bool) []string {
	if hit {
		return hdrHit
	}
	return hdrMiss
}

// ifMatch is the precondition the If-Match header fields place on resource id.
func ifMatch(r *http.Request, id string) plaza.Expect {
	var tags []string
	for _, v := range r.Header.Values("If-Match") {
		tags = append(tags, entityTags(v)...)
	}
	if len(tags) == 0 && len(r.Header.Values("If-Match")) > 0 {
		// A header that holds no entity tag at all can match nothing.
		return plaza.ExpectVersion()
	}
	return etag.Expect(id, tags...)
}

// noneMatch reports whether If-None-Match matches etag, by weak comparison (RFC 9110
// 13.1.2): "*" or the same opaque tag, with or without W/.
func noneMatch(values []string, etag string) bool {
	for _, v := range values {
		for _, t := range entityTags(v) {
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// entityTags splits a list of entity tags ("*" or `W/"x", "y"`), keeping each tag's
// quotes and weakness prefix. A comma inside quotes does not split.
func entityTags(v string) []string {
	var tags []string
	for {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			return tags
		}
		if v[0] == '*' {
			tags = append(tags, "*")
			v = v[1:]
			continue
		}
		start := 0
		if strings.HasPrefix(v, "W/") {
			start = 2
		}
		if len(v) <= start || v[start] != '"' {
			// Not a tag: skip to the next comma.
			_, rest, _ := strings.Cut(v, ",")
			v = rest
			continue
		}
		end := strings.IndexByte(v[start+1:], '"')
		if end < 0 {
			return tags
		}
		end += start + 2
		tags = append(tags, v[:end])
		v = v[end:]
	}
}
