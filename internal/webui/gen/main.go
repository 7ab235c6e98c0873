// Command gen copies the web app's sources (web/ at the repository root) into
// internal/webui for embedding: every asset under a content-hashed name in static/, module
// imports and index.html rewritten to those names. Run by go generate in internal/webui;
// the output is committed, so building Plaza never needs this step (or Node).
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// imports finds the relative module specifiers of import statements. The app's modules all
// import siblings as "./name.js".
var imports = regexp.MustCompile(`((?:from|import)\s*)"\./([A-Za-z0-9_-]+\.js)"`)

func main() {
	log.SetFlags(0)
	if err := run("../../web", "."); err != nil {
		log.Fatalf("webui/gen: %v", err)
	}
}

func run(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "index.html" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		files[e.Name()] = b
	}
	hashed := map[string]string{} // source name → hashed name
	var visit func(name string, path []string) error
	out := map[string][]byte{}
	visit = func(name string, path []string) error {
		if _, done := hashed[name]; done {
			return nil
		}
		if slices.Contains(path, name) {
			return fmt.Errorf("import cycle: %s → %s", strings.Join(path, " → "), name)
		}
		body, ok := files[name]
		if !ok {
			return fmt.Errorf("%s imports ./%s, which web/ does not have", path[len(path)-1], name)
		}
		// Hash the leaves first: a module's name must change when anything it imports does.
		for _, m := range imports.FindAllSubmatch(body, -1) {
			if err := visit(string(m[2]), append(path, name)); err != nil {
				return err
			}
		}
		body = imports.ReplaceAllFunc(body, func(b []byte) []byte {
			m := imports.FindSubmatch(b)
			return []byte(string(m[1]) + `"./` + hashed[string(m[2])] + `"`)
		})
		sum := sha256.Sum256(body)
		ext := filepath.Ext(name)
		hashed[name] = strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:5]) + ext
		out[hashed[name]] = body
		return nil
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := visit(name, nil); err != nil {
			return err
		}
	}

	index, err := os.ReadFile(filepath.Join(src, "index.html"))
	if err != nil {
		return err
	}
	for _, name := range names {
		index = bytes.ReplaceAll(index, []byte(`"/static/`+name+`"`), []byte(`"/static/`+hashed[name]+`"`))
	}

	static := filepath.Join(dst, "static")
	if err := os.RemoveAll(static); err != nil {
		return err
	}
	if err := os.MkdirAll(static, 0o755); err != nil {
		return err
	}
	for name, body := range out {
		if err := os.WriteFile(filepath.Join(static, name), body, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dst, "index.html"), index, 0o644)
}
