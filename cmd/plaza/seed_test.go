package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"plaza/internal/store"
)

// TestSeedThenCount seeds N products with `plaza seed`, counts them in the database, then
// serves that database: the categories add up to N and no demo data was added on top.
func TestSeedThenCount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"PLAZA_DATA_DIR": dir}
	var out bytes.Buffer
	err := run(context.Background(), []string{"plaza", "seed", "--products", "2500"}, func(k string) string { return env[k] }, nil, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Not a terminal: plain progress lines, then a summary.
	for _, want := range []string{"seeded 1000/2500 products\n", "seeded 2500/2500 products\n", "seeded 2500 products in ", "the catalog holds 2500\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	db, err := store.Open(t.Context(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Products().Count(t.Context())
	db.Close()
	if err != nil || n != 2500 {
		t.Fatalf("Count after seeding 2500 = %d, %v", n, err)
	}

	in := start(t, env)
	res, err := http.Get(in.URL + "/api/categories")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tree []struct{ Count int64 }
	if err := json.NewDecoder(res.Body).Decode(&tree); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range tree {
		total += c.Count
	}
	if total != 2500 {
		t.Fatalf("categories count %d products; want 2500 (no demo data over seeded data)", total)
	}
}

func TestSeedUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"--products"}, {"--products", "0"}, {"--products=many"}} {
		env := map[string]string{"PLAZA_DATA_DIR": t.TempDir()}
		err := run(context.Background(), append([]string{"plaza", "seed"}, args...), func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
		if exitCode(err) != 2 {
			t.Errorf("plaza seed %v: %v (exit %d); want a usage error", args, err, exitCode(err))
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"plaza", "seed", "--help"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--products N") || !strings.Contains(out.String(), "DATABASE_URL") {
		t.Fatalf("seed --help:\n%s", out.String())
	}
}

// TestDemoCatalogOnFirstStart: a development instance on an empty database serves the demo
// catalog; a production one does not.
func TestDemoCatalogOnFirstStart(t *testing.T) {
	t.Parallel()
	in := start(t, nil)
	res, err := http.Get(in.URL + "/api/products/electronics/?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Items      []struct{ ID, Category string }
		NextCursor string `json:"next_cursor"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, err)
	}
	if len(page.Items) < 20 || page.Items[0].Category != "electronics" {
		t.Fatalf("demo electronics: %d items", len(page.Items))
	}

	prod := start(t, map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": strings.Repeat("k", 32)})
	res, err = http.Get(prod.URL + "/api/categories")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("production instance has a catalog: %s", body)
	}
}
