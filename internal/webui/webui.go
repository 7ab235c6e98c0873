// Package webui embeds Plaza's web app and the Swagger UI. The app's sources live in web/ at
// the repository root (plain ES modules, no build step); go generate copies them here under
// content-hashed names (gen/), so a cached asset never goes stale and go run needs no Node.
// swagger/ holds swagger-ui-dist's files, vendored by scripts/vendor-swagger-ui.sh, and the
// initializer that points them at /openapi.json.
package webui

import (
	"embed"
	"io/fs"
	"strings"
)

//go:generate go run ./gen

//go:embed index.html
var index []byte

//go:embed static
var static embed.FS

//go:embed swagger
var swagger embed.FS

// Index is the app's page, served for every path the app routes.
func Index() []byte { return index }

// Asset is a file of the app by its hashed name ("app.1a2b3c4d5e.js").
func Asset(name string) ([]byte, bool) { return file(static, "static", name) }

// SwaggerFile is a file of the Swagger UI ("" is its index.html).
func SwaggerFile(name string) ([]byte, bool) {
	if name == "" {
		name = "index.html"
	}
	return file(swagger, "swagger", name)
}

func file(fsys fs.FS, dir, name string) ([]byte, bool) {
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return nil, false
	}
	b, err := fs.ReadFile(fsys, dir+"/"+name)
	return b, err == nil
}
