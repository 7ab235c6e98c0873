package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/etag"
	"plaza/internal/plaza"
)

// oneLamp is a catalog of one product whose text needs escaping; any other id is not found.
type oneLamp struct{ Catalog }

func (oneLamp) ProductJSON(_ context.Context, id string) (cached.Encoded, error) {
	if id != "p1" {
		return cached.Encoded{}, plaza.Errorf(plaza.ENotFound, "no product %q", id)
	}
	p := catalog.Product{ID: id, Name: `Lamp <"Desk"> & co` + "\u2028\\", PriceCents: 1999, Currency: "USD", Version: 3,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	b, err := json.Marshal(p)
	return cached.Encoded{JSON: b, ETag: etag.Make(p.ID, p.Version)}, err
}

// TestPostAnswersAsGqlgen sends the same requests through post and through gqlgen's own
// transport.POST: status, content type and body must be the same.
func TestPostAnswersAsGqlgen(t *testing.T) {
	t.Parallel()
	opts := Options{Catalog: oneLamp{}, Limits: Limits{MaxDepth: 4, MaxComplexity: 20}}
	ours, theirs := newServer(opts, post{}), newServer(opts, transport.POST{})
	const product = `query($id: ID!) { product(id: $id) { id name priceCents version createdAt etag } }`
	cases := []struct {
		name, accept, body string
	}{
		{"data", "", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"data, graphql-response+json", "application/graphql-response+json", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"data, accept list", "text/html;q=0.9, application/json; charset=utf-8", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"data, accept anything", "*/*", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"data, accept nothing known", "text/html", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"data, accept in capitals", "Application/JSON", `{"query":"` + product + `","variables":{"id":"p1"}}`},
		{"trailing bytes after the body", "", `{"query":"{ product(id: \"p1\") { id } }"} trailing`},
		{"resolver error", "application/json", `{"query":"` + product + `","variables":{"id":"p2"}}`},
		{"not JSON", "application/json", `{"query":`},
		{"not JSON, graphql-response+json", "application/graphql-response+json", `[1, 2`},
		{"does not parse", "application/json", `{"query":"{ product(id: "}`},
		{"does not validate", "application/graphql-response+json", `{"query":"{ nothing }"}`},
		{"variable missing", "application/json", `{"query":"` + product + `"}`},
		{"variable of the wrong type", "application/graphql-response+json", `{"query":"` + product + `","variables":{"id":1.5}}`},
		{"too deep", "application/json", `{"query":"{ categories { children { children { children { slug } } } } }"}`},
		{"too complex", "application/graphql-response+json", `{"query":"{ products(first: 100) { edges { node { id } } } }"}`},
		{"unknown operation name", "", `{"query":"` + product + `","operationName":"other","variables":{"id":"p1"}}`},
		{"no query", "", `{}`},
	}
	for _, c := range cases {
		answer := func(s *Server) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader([]byte(c.body)))
			r.Header.Set("Content-Type", "application/json")
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
			w := httptest.NewRecorder()
			if err := s.ServeGraphQL(w, r); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			return w
		}
		got, want := answer(ours), answer(theirs)
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != want.Body.String() {
			t.Errorf("%s:\npost         %d %s %s\ntransport.POST %d %s %s", c.name,
				got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}
