package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	jsonv2 "github.com/go-json-experiment/json"

	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/etag"
	"plaza/internal/plaza"
)

// oneLamp is a catalog of one product, p1, whose text needs escaping, and p0, whose times
// are zero (the executor answers a null error); any other id is not found. It counts the
// reads made by gqlgen's executor (with a field context) and outside it (direct's).
type oneLamp struct {
	Catalog
	direct, executor atomic.Int32
}

func (c *oneLamp) ProductJSON(ctx context.Context, id string) (cached.Encoded, error) {
	if gql.GetFieldContext(ctx) == nil {
		c.direct.Add(1)
	} else {
		c.executor.Add(1)
	}
	p := catalog.Product{ID: id, Name: "Lamp <\"Desk\"> & co\u2028\\ \x01\t\n é", Description: "ünïcode ☃ 😀",
		PriceCents: 1999, Currency: "USD", Category: "home", Subcategory: "lighting/desk", Stock: -1, Version: 3,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), UpdatedAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.FixedZone("x", 3600))}
	switch id {
	case "p1":
	case "p0":
		p.CreatedAt, p.UpdatedAt = time.Time{}, time.Time{}
	default:
		return cached.Encoded{}, plaza.Errorf(plaza.ENotFound, "no product %q", id)
	}
	b, err := json.Marshal(p)
	return cached.Encoded{JSON: b, ETag: etag.Make(p.ID, p.Version)}, err
}

// TestPostAnswersAsGqlgen sends the same requests through post and through gqlgen's own
// transport.POST: status, content type and body must be the same.
func TestPostAnswersAsGqlgen(t *testing.T) {
	t.Parallel()
	opts := Options{Catalog: &oneLamp{}, Limits: Limits{MaxDepth: 4, MaxComplexity: 20}}
	ours := newServer(opts, func(*resolver) gql.Transport { return post{} })
	theirs := newServer(opts, func(*resolver) gql.Transport { return transport.POST{} })
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
		got, want := postTo(t, ours, c.accept, c.body), postTo(t, theirs, c.accept, c.body)
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != want.Body.String() {
			t.Errorf("%s:\npost         %d %s %s\ntransport.POST %d %s %s", c.name,
				got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}

func postTo(t *testing.T, s *Server, accept, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader([]byte(body)))
	r.Header.Set("Content-Type", "application/json")
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	if err := s.ServeGraphQL(w, r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return w
}

// TestDirectAnswersAsExecutor sends the same queries to post with direct and without it:
// the answers must be the same, and direct must answer the product queries of stored
// fields itself and leave the rest to the executor.
func TestDirectAnswersAsExecutor(t *testing.T) {
	t.Parallel()
	lamps := &oneLamp{}
	opts := Options{Catalog: lamps}
	ours := newServer(opts, func(r *resolver) gql.Transport { return post{direct: newDirect(r)} })
	theirs := newServer(opts, func(*resolver) gql.Transport { return post{} })
	const every = `id name description priceCents currency category subcategory stock version createdAt updatedAt`
	cases := []struct {
		name, body string
		direct     bool
	}{
		{"every stored field", `{"query":"query($id: ID!) { product(id: $id) { ` + every + ` } }","variables":{"id":"p1"}}`, true},
		{"aliases", `{"query":"{ lamp: product(id: \"p1\") { n: name id price: priceCents when: updatedAt } }"}`, true},
		{"named, among others", `{"query":"query A { product(id: \"p1\") { id } } query B($id: ID!) { product(id: $id) { name stock } }","operationName":"B","variables":{"id":"p1"}}`, true},
		{"the same field twice", `{"query":"{ product(id: \"p1\") { id name id } }"}`, false},
		{"a resolver field", `{"query":"{ product(id: \"p1\") { id etag } }"}`, false},
		{"__typename", `{"query":"{ product(id: \"p1\") { __typename id } }"}`, false},
		{"a fragment", `{"query":"{ product(id: \"p1\") { ...f } } fragment f on Product { id name }"}`, false},
		{"a directive", `{"query":"query($x: Boolean!) { product(id: \"p1\") { id name @include(if: $x) } }","variables":{"x":false}}`, false},
		{"two fields", `{"query":"{ product(id: \"p1\") { id } categories { slug } }"}`, false},
		{"not found", `{"query":"query($id: ID!) { product(id: $id) { id name } }","variables":{"id":"p2"}}`, false},
		{"zero times", `{"query":"query($id: ID!) { product(id: $id) { id createdAt } }","variables":{"id":"p0"}}`, false},
		{"an id that is a number", `{"query":"query($id: ID!) { product(id: $id) { id name } }","variables":{"id":1}}`, false},
		{"node", `{"query":"{ node(id: \"p1\") { id } }"}`, false},
	}
	for _, c := range cases {
		direct, executor := lamps.direct.Load(), lamps.executor.Load()
		got := postTo(t, ours, "", c.body)
		if direct := lamps.direct.Load() > direct && lamps.executor.Load() == executor; direct != c.direct {
			t.Errorf("%s: answered directly %v, want %v", c.name, direct, c.direct)
		}
		want := postTo(t, theirs, "", c.body)
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != want.Body.String() {
			t.Errorf("%s:\ndirect   %d %s %s\nexecutor %d %s %s", c.name,
				got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}

// paramBodies are request bodies whose parameters both decodings must agree on, and bodies
// the strict one must refuse (encoding/json reads them otherwise, so they go to
// transport.POST).
var paramBodies = []struct {
	body   string
	strict bool // decoded by paramsOptions
}{
	{`{"query":"{ me { id } }"}`, true},
	{`{"query":"query($id:ID!){product(id:$id){id}}","variables":{"id":"p1"},"operationName":null}`, true},
	{`{"query":"q","operationName":"Op","variables":{"n":12,"f":-1.5e3,"big":123456789012345678901234567890,"z":0}}`, true},
	{`{"query":"q","variables":{"a":[1,2.0,{"b":[3,null,true,"x"]}],"o":{}},"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`, true},
	{`{"query":"\u00e9\ud83d\ude00 \"quoted\" \\ \n","variables":null,"extensions":null}`, true},
	{` {"query":"q"} `, true},
	{`{"query":"q","headers":{"X-A":["1"]}}`, false}, // a member RawParams does not decode
	{`{"Query":"q"}`, false},                         // encoding/json matches names in any case
	{`{"query":"a","query":"b"}`, false},             // the last one wins there
	{`{"query":"q"} {"query":"r"}`, false},           // the first value alone is read there
	{`{"query":"q"}garbage`, false},                  // likewise
	{"{\"query\":\"\xff\"}", false},                  // invalid UTF-8 is replaced there
	{`{"query":"q","variables":{"a":1,"a":2}}`, false},
	{`{"query":"q","other":1}`, false},
	{`{"query":1}`, false},
	{`[{"query":"q"}]`, false},
}

// decodeAsPOST decodes as transport.POST does.
func decodeAsPOST(b []byte) (gql.RawParams, error) {
	var p gql.RawParams
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&p)
	return p, err
}

// TestParamsDecodeAsPOST: a body the strict decoding accepts has the parameters
// transport.POST's decoding gives it, numbers as json.Number with their text; a body where
// the two could differ is refused, so post hands it to transport.POST.
func TestParamsDecodeAsPOST(t *testing.T) {
	for _, tc := range paramBodies {
		var got gql.RawParams
		err := jsonv2.Unmarshal([]byte(tc.body), &got, paramsOptions)
		if (err == nil) != tc.strict {
			t.Errorf("%s: strict decoding error %v, want accepted %v", tc.body, err, tc.strict)
			continue
		}
		if err != nil {
			continue
		}
		want, err := decodeAsPOST([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.body, got, want)
		}
	}
	var p gql.RawParams
	if err := jsonv2.Unmarshal([]byte(paramBodies[2].body), &p, paramsOptions); err != nil {
		t.Fatal(err)
	}
	if n, ok := p.Variables["big"].(json.Number); !ok || n != "123456789012345678901234567890" {
		t.Errorf("big = %#v, want the json.Number as written", p.Variables["big"])
	}
}

// FuzzParamsDecodeAsPOST: whatever the strict decoding accepts, encoding/json decodes to
// the same parameters.
func FuzzParamsDecodeAsPOST(f *testing.F) {
	for _, tc := range paramBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got gql.RawParams
		if jsonv2.Unmarshal(b, &got, paramsOptions) != nil {
			return
		}
		want, err := decodeAsPOST(b)
		if err != nil {
			t.Fatalf("%q: accepted by the strict decoding, refused by encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
		}
	})
}
