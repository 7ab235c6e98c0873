package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"plaza/api/openapi"
)

// handleDocument serves the API description (api/openapi/openapi.yaml, or its JSON form
// made at start). It changes only with the binary, so clients revalidate it by ETag.
func (s *Server) handleDocument(contentType string, body []byte, err error) http.Handler {
	tag := contentTag(body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", tag)
		if noneMatch(r.Header.Values("If-None-Match"), tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
}

func (s *Server) handleOpenAPIYAML() http.Handler {
	return s.handleDocument("application/yaml", openapi.YAML, nil)
}

func (s *Server) handleOpenAPIJSON() http.Handler {
	body, err := openapi.JSON()
	return s.handleDocument("application/json", body, err)
}

// contentTag is a strong entity tag for a body that changes only with the binary.
func contentTag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}
