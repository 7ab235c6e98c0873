package graphql

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The playground is GraphiQL served from the binary: the page, its start script and the
// vendored GraphiQL and React builds (scripts/vendor-graphiql.sh). Nothing comes from a
// CDN, so it works offline, and its Content-Security-Policy allows this origin only (data:
// for the fonts and icons inlined in GraphiQL's stylesheet).
//
//go:embed playground
var playgroundFiles embed.FS

const playgroundCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServePlayground serves GET /playground and its files under /playground/.
func (s *Server) ServePlayground(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", playgroundCSP)
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "playground" || name == "playground/" {
		name = "playground/index.html"
	}
	if strings.HasPrefix(name, "playground/assets/") {
		// Vendored files change only with a new binary; the page itself revalidates.
		w.Header().Set("Cache-Control", "public, max-age=86400")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if _, err := fs.Stat(playgroundFiles, name); err != nil {
		http.NotFound(w, r)
		return
	}
	http.ServeFileFS(w, r, playgroundFiles, name)
}
