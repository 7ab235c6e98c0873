package graphql_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"plaza/internal/bus"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/chat"
	"plaza/internal/etag"
	"plaza/internal/graphql"
	"plaza/internal/plaza"
	"plaza/internal/users"
)

// fakeUsers knows three users and one valid token, and counts the store-shaped calls.
type fakeUsers struct {
	graphql.Users // calls a test does not expect panic
	getMany       atomic.Int32
	gets          atomic.Int32
	lastIDs       []string
	mu            sync.Mutex
}

var people = map[string]users.User{
	"u1": {ID: "u1", Name: "Ann", Role: plaza.RoleUser},
	"u2": {ID: "u2", Name: "Bob", Role: plaza.RoleUser},
	"u3": {ID: "u3", Name: "Cy", Role: plaza.RoleUser},
}

func (f *fakeUsers) GetMany(ctx context.Context, ids []string) ([]users.User, error) {
	f.getMany.Add(1)
	f.mu.Lock()
	f.lastIDs = ids
	f.mu.Unlock()
	var out []users.User
	for _, id := range ids {
		if u, ok := people[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeUsers) Get(ctx context.Context, id string) (users.User, error) {
	f.gets.Add(1)
	return people[id], nil
}

func (f *fakeUsers) Me(ctx context.Context) (users.User, error) {
	p, ok := plaza.PrincipalFrom(ctx)
	if !ok {
		return users.User{}, plaza.Errorf(plaza.EUnauthenticated, "sign in first")
	}
	return people[p.UserID], nil
}

func (f *fakeUsers) Authenticate(ctx context.Context, token string) (plaza.Principal, error) {
	if token == "good" {
		return plaza.Principal{UserID: "u1", Role: plaza.RoleUser}, nil
	}
	return plaza.Principal{}, plaza.Errorf(plaza.EUnauthenticated, "bad token")
}

// fakeChat has one room whose history is 30 messages by three authors.
type fakeChat struct{ graphql.Chat }

func (fakeChat) History(ctx context.Context, room string, req plaza.PageRequest) (plaza.Page[chat.Message], error) {
	if room != "general" {
		return plaza.Page[chat.Message]{}, plaza.Errorf(plaza.ENotFound, "no room %q", room)
	}
	if _, err := req.Normalize(); err != nil {
		return plaza.Page[chat.Message]{}, err
	}
	var ms []chat.Message
	for i := range 30 {
		ms = append(ms, chat.Message{ID: fmt.Sprintf("m%02d", 30-i), Room: room, UserID: fmt.Sprintf("u%d", i%3+1), Text: "hi"})
	}
	return plaza.Page[chat.Message]{Items: ms}, nil
}

// fakeCatalog counts reads, so a test can tell that a refused operation never ran.
type fakeCatalog struct {
	graphql.Catalog
	reads atomic.Int32
	fail  error
	// renamed is what the product is called from version 4 on, when set.
	renamed atomic.Pointer[string]
}

func (f *fakeCatalog) ProductJSON(ctx context.Context, id string) (cached.Encoded, error) {
	f.reads.Add(1)
	if f.fail != nil {
		return cached.Encoded{}, f.fail
	}
	p := catalog.Product{ID: id, Name: "Lamp", PriceCents: 1999, Currency: "USD", Category: "home", Version: 3}
	if name := f.renamed.Load(); name != nil {
		p.Name, p.Version = *name, 4
	}
	b, err := json.Marshal(p)
	return cached.Encoded{JSON: append(b, '\n'), ETag: etag.Make(p.ID, p.Version)}, err
}

func (f *fakeCatalog) List(ctx context.Context, flt catalog.Filter) (catalog.Page, error) {
	f.reads.Add(1)
	return catalog.Page{Items: []catalog.Product{{ID: "p1"}}}, nil
}

func (f *fakeCatalog) CategoriesJSON(ctx context.Context) (cached.Encoded, error) {
	f.reads.Add(1)
	return cached.Encoded{JSON: []byte(`[{"slug":"home","path":"home","count":1,"children":[{"slug":"lamps","path":"home/lamps","count":1,"children":[]}]}]`)}, nil
}

type env struct {
	url     string
	users   *fakeUsers
	catalog *fakeCatalog
	gql     *graphql.Server
	stop    context.CancelFunc
	bus     bus.Bus
}

func newEnv(t *testing.T, limits graphql.Limits) *env {
	t.Helper()
	shutdown, stop := context.WithCancel(context.Background())
	e := &env{users: &fakeUsers{}, catalog: &fakeCatalog{}, stop: stop, bus: bus.NewMemory(bus.MemoryOptions{})}
	e.gql = graphql.New(graphql.Options{
		Users: e.users, Catalog: e.catalog, Chat: fakeChat{}, Events: e.bus,
		Limits: limits, Introspection: true, Shutdown: shutdown,
		// Long enough that every author of a page joins one batch even on a loaded machine.
		LoaderWait: 50 * time.Millisecond,
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the REST middleware does before: the caller into the context.
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			p, err := e.users.Authenticate(r.Context(), tok)
			if err != nil {
				w.WriteHeader(401)
				return
			}
			r = r.WithContext(plaza.WithPrincipal(r.Context(), p))
		}
		if err := e.gql.ServeGraphQL(w, r); err != nil {
			w.WriteHeader(599)
			fmt.Fprint(w, plaza.ErrorCodeOf(err))
		}
	}))
	t.Cleanup(func() {
		stop()
		srv.Close()
		e.bus.Close()
	})
	e.url = srv.URL
	return e
}

type response struct {
	Status int
	Data   map[string]any
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func (r response) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (e *env) post(t *testing.T, token string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out response
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("status %d: %v", res.StatusCode, err)
	}
	out.Status = res.StatusCode
	return out
}

func (e *env) query(t *testing.T, token, q string) response {
	return e.post(t, token, map[string]any{"query": q})
}

func TestAuthorsOfAPageLoadInOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	r := e.query(t, "good", `{ messages(room: "general", last: 30) { edges { node { id author { name } } } pageInfo { hasPreviousPage startCursor } } }`)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if n := e.users.getMany.Load(); n != 1 {
		t.Fatalf("GetMany called %d times for one page; want 1", n)
	}
	if e.users.gets.Load() != 0 {
		t.Fatal("authors were loaded one by one")
	}
	if len(e.users.lastIDs) != 3 {
		t.Fatalf("GetMany got %v; want the 3 distinct authors", e.users.lastIDs)
	}
	edges := r.Data["messages"].(map[string]any)["edges"].([]any)
	first := edges[0].(map[string]any)["node"].(map[string]any)
	last := edges[29].(map[string]any)["node"].(map[string]any)
	// The service answers newest first; edges are oldest first.
	if first["id"] != "m01" || last["id"] != "m30" || first["author"].(map[string]any)["name"] != "Cy" {
		t.Fatalf("first %v, last %v", first, last)
	}
}

func TestLimitsRefuseBeforeExecution(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{MaxDepth: 4, MaxComplexity: 500, MaxAliases: 2})
	cases := []struct {
		name, query, code string
	}{
		{"depth", `{ categories { children { children { children { slug } } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"depth through a fragment", `{ categories { ...c } } fragment c on Category { children { children { children { slug } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		// 1 + 100 × (edges 1 + node (1 + 3 fields)) = 501
		{"complexity", `{ products(first: 100) { edges { node { id name description } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"aliases", `{ a: product(id: "1") { id } b: product(id: "2") { id } c: product(id: "3") { id } }`, "ALIAS_LIMIT_EXCEEDED"},
	}
	for _, c := range cases {
		r := e.query(t, "", c.query)
		if r.code() != c.code || r.Status != 400 || r.Data != nil {
			t.Errorf("%s: status %d, code %q, data %v; want 400 %s", c.name, r.Status, r.code(), r.Data, c.code)
		}
	}
	if n := e.catalog.reads.Load(); n != 0 {
		t.Fatalf("refused operations read the catalog %d times", n)
	}
	// Within the limits the same shapes run.
	for _, q := range []string{
		`{ categories { children { children { slug count path } } } }`,
		`{ products(first: 10) { edges { node { id name description } } } }`,
		`{ a: product(id: "1") { id } b: product(id: "2") { id } }`,
	} {
		if r := e.query(t, "", q); len(r.Errors) > 0 || r.Status != 200 {
			t.Errorf("%s: %d %+v", q, r.Status, r.Errors)
		}
	}
}

// The weight of an operation is remembered per query text only when its variables cannot
// change it: a page size passed as a variable is weighed on every request.
func TestComplexityFollowsVariables(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{MaxComplexity: 500})
	page := `query($n: Int, $id: ID!) { products(first: $n) { edges { node { id name description } } } product(id: $id) { id } }`
	for _, c := range []struct {
		n    int
		code string
	}{{10, ""}, {100, "COMPLEXITY_LIMIT_EXCEEDED"}, {10, ""}, {100, "COMPLEXITY_LIMIT_EXCEEDED"}} {
		r := e.post(t, "", map[string]any{"query": page, "variables": map[string]any{"n": c.n, "id": "p1"}})
		if r.code() != c.code {
			t.Fatalf("first: %d: code %q (%+v); want %q", c.n, r.code(), r.Errors, c.code)
		}
	}
	// A literal page size weighs the same every time, whatever the other variables.
	for _, id := range []string{"p1", "p2", "p3"} {
		r := e.post(t, "", map[string]any{"query": `query($id: ID!) { products(first: 100) { edges { node { id name description } } } product(id: $id) { id } }`, "variables": map[string]any{"id": id}})
		if r.code() != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Fatalf("%s: code %q; want COMPLEXITY_LIMIT_EXCEEDED", id, r.code())
		}
		r = e.post(t, "", map[string]any{"query": `query($id: ID!) { products(first: 10) { edges { node { id } } } product(id: $id) { id } }`, "variables": map[string]any{"id": id}})
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", id, r.Errors)
		}
	}
}

func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	q := `{ product(id: "p1") { name } }`
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}

	// Miss: the hash alone is unknown; the client then sends the query with it.
	r := e.post(t, "", map[string]any{"extensions": ext})
	if len(r.Errors) == 0 || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Fatalf("first hash-only request: %+v", r)
	}
	if r := e.post(t, "", map[string]any{"query": q, "extensions": ext}); len(r.Errors) > 0 {
		t.Fatalf("query with hash: %+v", r.Errors)
	}
	// Hit: the hash alone now runs the query, over POST and GET.
	r = e.post(t, "", map[string]any{"extensions": ext})
	if len(r.Errors) > 0 || r.Data["product"].(map[string]any)["name"] != "Lamp" {
		t.Fatalf("hash-only after storing: %+v", r)
	}
	extJSON, _ := json.Marshal(ext)
	res, err := http.Get(e.url + "?extensions=" + string(extJSON))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET with the hash: %d", res.StatusCode)
	}
	// A query that does not hash to the hash given is refused.
	bad := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if r := e.post(t, "", map[string]any{"query": q, "extensions": bad}); len(r.Errors) == 0 {
		t.Fatal("a query with a wrong hash ran")
	}
}

func TestErrorsCarryCodesAndNoInternals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	if r := e.query(t, "", `{ me { id } }`); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous me: %+v", r)
	}
	e.catalog.fail = errors.New("pq: password authentication failed for user plaza")
	r := e.query(t, "", `{ product(id: "p1") { id } }`)
	if r.code() != "INTERNAL" || strings.Contains(r.Errors[0].Message, "password") {
		t.Fatalf("internal error: %+v", r)
	}
	e.catalog.fail = plaza.Errorf(plaza.ENotFound, "no product with this ID")
	if r := e.query(t, "", `{ product(id: "p1") { id } }`); r.code() != "NOT_FOUND" || r.Errors[0].Message != "no product with this ID" {
		t.Fatalf("not found: %+v", r)
	}
	// The page size is checked by the service; the field error names the argument.
	r = e.query(t, "good", `{ messages(room: "general", last: 500) { edges { cursor } } }`)
	if r.code() != "BAD_REQUEST" {
		t.Fatalf("oversized page: %+v", r)
	}
}

func TestGetRunsQueriesOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	res, err := http.Get(e.url + `?query=mutation{logout(refreshToken:"x")}`)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
		t.Fatalf("mutation over GET: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// wsClient speaks graphql-transport-ws.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, url string, header http.Header) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		return nil, err
	}
	return &wsClient{t: t, c: c}, nil
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	if err := w.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message that is not a ping or pong, or the error that ended the
// connection.
func (w *wsClient) next() (map[string]any, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := w.c.Read(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			w.t.Fatal(err)
		}
		if m["type"] == "ping" || m["type"] == "pong" {
			continue
		}
		return m, nil
	}
}

func TestWebSocketInitRefusesABadToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	w, err := dial(t, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer forged"}})
	for {
		if _, err := w.next(); err != nil {
			if websocket.CloseStatus(err) != 4403 {
				t.Fatalf("closed with %v; want 4403", err)
			}
			return
		}
	}
}

func TestWebSocketOriginIsChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	_, err := dial(t, e.url, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || !strings.Contains(err.Error(), "599") {
		t.Fatalf("foreign origin: %v; want refused before the upgrade", err)
	}
}

// TestSubscriptionEndsCleanlyOnShutdown: an event published on the bus reaches the
// subscriber, a signed-in chat subscription uses the token of connection_init, and the
// server's shutdown closes the socket normally and Wait returns.
func TestSubscriptionEndsCleanlyOnShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	w, err := dial(t, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(map[string]any{"type": "connection_init", "payload": map[string]any{"token": "good"}})
	if m, err := w.next(); err != nil || m["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", m, err)
	}
	w.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { productChanged(category: "home") { type product { name } } }`}})
	w.send(map[string]any{"id": "2", "type": "subscribe", "payload": map[string]any{"query": `subscription { messageAdded(room: "general") { text author { name } } }`}})

	// Publish until the subscriptions are live (subscribing is asynchronous).
	got := map[string]bool{}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, c := range []string{"garden", "home"} {
				ev, _ := plaza.NewEvent(catalog.EventUpdated, "", catalog.Product{ID: "p1", Name: "Lamp in " + c, Category: c}, time.Now())
				e.bus.Publish(context.Background(), plaza.StreamCatalog, ev)
			}
			ev, _ := plaza.NewEvent(chat.EventMessage, "u2", chat.Message{ID: "m99", Room: "general", UserID: "u2", Text: "live"}, time.Now())
			e.bus.Publish(context.Background(), chat.Stream("general"), ev)
		}
	}()
	for !got["1"] || !got["2"] {
		m, err := w.next()
		if err != nil {
			t.Fatal(err)
		}
		if m["type"] != "next" {
			t.Fatalf("unexpected %v", m)
		}
		data, _ := json.Marshal(m["payload"])
		switch m["id"] {
		case "1":
			if !strings.Contains(string(data), `"product":{"name":"Lamp in home"},"type":"UPDATED"`) {
				t.Fatalf("product change: %s", data)
			}
		case "2":
			if !strings.Contains(string(data), `"author":{"name":"Bob"},"text":"live"`) {
				t.Fatalf("message: %s", data)
			}
		}
		got[m["id"].(string)] = true
	}

	e.stop() // the server's shutdown signal
	for {
		if _, err := w.next(); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("closed with %v; want a normal closure", err)
			}
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.gql.Wait(ctx); err != nil {
		t.Fatalf("Wait after shutdown: %v", err)
	}
}

// TestProductFollowsVersions: product(id) answers what the catalog holds now; a product
// read before and changed since is not answered from what was decoded before.
func TestProductFollowsVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, graphql.Limits{})
	query := map[string]any{"query": `query($id: ID!) { product(id: $id) { name etag } }`, "variables": map[string]any{"id": "p1"}}
	name := func() string {
		t.Helper()
		r := e.post(t, "", query)
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %+v", r.Errors)
		}
		return r.Data["product"].(map[string]any)["name"].(string)
	}
	if n := name(); n != "Lamp" {
		t.Fatalf("first read: %q", n)
	}
	if n := name(); n != "Lamp" {
		t.Fatalf("second read: %q", n)
	}
	renamed := "Floor Lamp"
	e.catalog.renamed.Store(&renamed)
	if n := name(); n != "Floor Lamp" {
		t.Fatalf("after the change: %q, want Floor Lamp", n)
	}
}
