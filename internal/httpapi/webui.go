package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/webui"
)

// The pages' Content-Security-Policy: scripts, styles and connections from this origin
// only (WebSocket and EventSource included), no inline script or style, nothing third-party,
// no framing. The app is written to work under it; the browser tests fail on any violation.
const (
	appCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	// Swagger UI sets element styles from script (allowed: they are not inline markup) and
	// draws its icons as data: images.
	swaggerCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// immutable: assets are named by their content's hash, so a name never changes meaning.
	assetCacheControl = "public, max-age=31536000, immutable"
)

// handleApp serves the web app's page for every path it routes (GET /{path...}, the
// catch-all); unknown /api/... paths stay API 404s with problem bodies.
func (s *Server) handleApp() http.Handler {
	page := webui.Index()
	tag := contentTag(page)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPIPath(r.URL.Path) {
			infoFrom(r.Context()).pattern = "" // no route matched: measured as "unmatched"
			writeProblem(w, r, http.StatusNotFound, plaza.ENotFound, "no route matches "+r.URL.Path, nil)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", appCSP)
		h.Set("Cache-Control", "no-cache") // always revalidated: it names the current assets
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("ETag", tag)
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(page))
	})
}

// handleStatic serves the app's content-hashed assets.
func (s *Server) handleStatic() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		body, ok := webui.Asset(name)
		if !ok {
			writeProblem(w, r, http.StatusNotFound, plaza.ENotFound, "no asset "+name, nil)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", assetCacheControl)
		h.Set("Content-Security-Policy", appCSP)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// handleSwagger serves Swagger UI (vendored swagger-ui-dist) for /openapi.json. Its files
// keep their names across versions, so they are revalidated by ETag rather than cached.
func (s *Server) handleSwagger() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		body, ok := webui.SwaggerFile(name)
		if !ok {
			writeProblem(w, r, http.StatusNotFound, plaza.ENotFound, "no Swagger UI file "+name, nil)
			return
		}
		if name == "" {
			name = "index.html"
		}
		h := w.Header()
		h.Set("Content-Security-Policy", swaggerCSP)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", contentTag(body))
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

func isAPIPath(p string) bool { return p == "/api" || strings.HasPrefix(p, "/api/") }
