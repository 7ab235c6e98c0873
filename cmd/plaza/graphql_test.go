package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"plaza/internal/redistest"
)

// gql posts one GraphQL operation and returns the decoded response.
func gql(t *testing.T, url, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	code, b := apiJSON(t, "POST", url+"/graphql", token, string(body))
	var r gqlResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("graphql %d: %s", code, b)
	}
	r.raw = b
	return r
}

type gqlResponse struct {
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions struct {
			Code   string
			Fields []struct{ Field, Message string }
		}
	}
	raw []byte
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

// restCodes is docs/contracts.md read backwards: the GraphQL code of each REST status.
var restCodes = map[int]string{200: "", 201: "", 204: "", 400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN",
	404: "NOT_FOUND", 409: "CONFLICT", 412: "PRECONDITION_FAILED", 422: "BAD_USER_INPUT"}

// TestGraphQLAuthorizationParity asks REST and GraphQL the same things as the same callers
// and expects the same answer for every mutation: the rules are the services', so the two
// transports cannot disagree.
func TestGraphQLAuthorizationParity(t *testing.T) {
	t.Parallel()
	in, admin, ann, bob := chatUsers(t, nil)
	var annID, bobID string
	for tok, id := range map[string]*string{ann: &annID, bob: &bobID} {
		r := gql(t, in.URL, tok, `{ me { id } }`, nil)
		var d struct{ Me struct{ ID string } }
		json.Unmarshal(r.Data, &d)
		*id = d.Me.ID
	}
	productID := func() string {
		r := gql(t, in.URL, admin, `mutation { createProduct(input: {name: "Parity", priceCents: 100, category: "toys"}) { id } }`, nil)
		var d struct{ CreateProduct struct{ ID string } }
		if json.Unmarshal(r.Data, &d); d.CreateProduct.ID == "" {
			t.Fatalf("createProduct as admin: %s", r.raw)
		}
		return d.CreateProduct.ID
	}
	pid := productID()
	annMsg := gql(t, in.URL, ann, `mutation { sendMessage(room: "general", text: "mine") { id } }`, nil)
	var sent struct{ SendMessage struct{ ID string } }
	if json.Unmarshal(annMsg.Data, &sent); sent.SendMessage.ID == "" {
		t.Fatalf("sendMessage: %s", annMsg.raw)
	}
	stale := `"` + pid + `-v99"`

	cases := []struct {
		name        string
		token       string
		method, url string
		body        string
		header      map[string]string
		query       string
	}{
		{"register as admin role, anonymous", "", "POST", "/api/users", `{"name":"Eve","email":"eve@example.com","password":"` + strongPassword + `","role":"admin"}`, nil,
			`mutation { register(input: {name: "Eve", email: "eve@example.com", password: "` + strongPassword + `", role: ADMIN}) { id } }`},
		{"register invalid", "", "POST", "/api/users", `{"name":"","email":"nope","password":"x"}`, nil,
			`mutation { register(input: {name: "", email: "nope", password: "x"}) { id } }`},
		{"login wrong password", "", "POST", "/api/auth/login", `{"email":"ann@example.com","password":"wrong password here"}`, nil,
			`mutation { login(email: "ann@example.com", password: "wrong password here") { accessToken } }`},
		{"refresh unknown token", "", "POST", "/api/auth/refresh", `{"refresh_token":"nope"}`, nil,
			`mutation { refreshToken(refreshToken: "nope") { accessToken } }`},
		{"update another user", bob, "PATCH", "/api/users/" + annID, `{"name":"Hacked"}`, map[string]string{"Content-Type": "application/merge-patch+json"},
			`mutation { updateUser(id: "` + annID + `", input: {name: "Hacked"}) { id } }`},
		{"update user anonymous", "", "PATCH", "/api/users/" + annID, `{"name":"Hacked"}`, map[string]string{"Content-Type": "application/merge-patch+json"},
			`mutation { updateUser(id: "` + annID + `", input: {name: "Hacked"}) { id } }`},
		{"delete another user", bob, "DELETE", "/api/users/" + annID, "", nil,
			`mutation { deleteUser(id: "` + annID + `") }`},
		{"create product as user", bob, "POST", "/api/products", `{"name":"X","price_cents":1,"category":"toys"}`, nil,
			`mutation { createProduct(input: {name: "X", priceCents: 1, category: "toys"}) { id } }`},
		{"create product anonymous", "", "POST", "/api/products", `{"name":"X","price_cents":1,"category":"toys"}`, nil,
			`mutation { createProduct(input: {name: "X", priceCents: 1, category: "toys"}) { id } }`},
		{"create product invalid", admin, "POST", "/api/products", `{"name":"X","price_cents":-1,"category":"toys"}`, nil,
			`mutation { createProduct(input: {name: "X", priceCents: -1, category: "toys"}) { id } }`},
		{"update product as user", bob, "PATCH", "/api/products/" + pid, `{"name":"Y"}`, map[string]string{"Content-Type": "application/merge-patch+json"},
			`mutation { updateProduct(id: "` + pid + `", input: {name: "Y"}) { id } }`},
		{"update product stale etag", admin, "PATCH", "/api/products/" + pid, `{"name":"Y"}`, map[string]string{"Content-Type": "application/merge-patch+json", "If-Match": stale},
			`mutation { updateProduct(id: "` + pid + `", input: {name: "Y"}, ifMatch: "\"` + pid + `-v99\"") { id } }`},
		{"update product unknown", admin, "PATCH", "/api/products/nope", `{"name":"Y"}`, map[string]string{"Content-Type": "application/merge-patch+json"},
			`mutation { updateProduct(id: "nope", input: {name: "Y"}) { id } }`},
		{"delete product as user", bob, "DELETE", "/api/products/" + pid, "", nil,
			`mutation { deleteProduct(id: "` + pid + `") }`},
		{"delete product stale etag", admin, "DELETE", "/api/products/" + pid, "", map[string]string{"If-Match": stale},
			`mutation { deleteProduct(id: "` + pid + `", ifMatch: "\"` + pid + `-v99\"") }`},
		{"create room anonymous", "", "POST", "/api/rooms", `{"slug":"x","name":"X"}`, nil,
			`mutation { createRoom(slug: "x", name: "X") { slug } }`},
		{"create room invalid", bob, "POST", "/api/rooms", `{"slug":"Not A Slug","name":"X"}`, nil,
			`mutation { createRoom(slug: "Not A Slug", name: "X") { slug } }`},
		{"delete another's message", bob, "DELETE", "/api/rooms/general/messages/" + sent.SendMessage.ID, "", nil,
			`mutation { deleteMessage(room: "general", id: "` + sent.SendMessage.ID + `") }`},
		{"delete message anonymous", "", "DELETE", "/api/rooms/general/messages/" + sent.SendMessage.ID, "", nil,
			`mutation { deleteMessage(room: "general", id: "` + sent.SendMessage.ID + `") }`},
	}
	for _, c := range cases {
		res, body := client{t: t, url: in.URL, token: c.token}.do(c.method, c.url, c.body, c.header)
		want, ok := restCodes[res.StatusCode]
		if !ok {
			t.Fatalf("%s: REST answered %d %s", c.name, res.StatusCode, body)
		}
		if got := gql(t, in.URL, c.token, c.query, nil); got.code() != want {
			t.Errorf("%s: REST %d (%s), GraphQL %q: %s", c.name, res.StatusCode, want, got.code(), got.raw)
		}
	}
	// Logging out with an unknown refresh token signs the caller out and says nothing
	// more, on both; each side gets a login of its own, since the first logout ends it.
	restSide, gqlSide := signIn(t, in.URL, "bob@example.com", strongPassword), signIn(t, in.URL, "bob@example.com", strongPassword)
	if code, b := apiJSON(t, "POST", in.URL+"/api/auth/logout", restSide.AccessToken, `{"refresh_token":"nope"}`); code != 204 && code != 200 {
		t.Errorf("REST logout: %d %s", code, b)
	}
	if r := gql(t, in.URL, gqlSide.AccessToken, `mutation { logout(refreshToken: "nope") }`, nil); string(r.Data) != `{"logout":true}` {
		t.Errorf("GraphQL logout: %s", r.raw)
	}
	// Anonymous sendMessage is refused as the WebSocket refuses it; the author deletes.
	if r := gql(t, in.URL, "", `mutation { sendMessage(room: "general", text: "x") { id } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Errorf("anonymous sendMessage: %s", r.raw)
	}
	if r := gql(t, in.URL, ann, `mutation { deleteMessage(room: "general", id: "`+sent.SendMessage.ID+`") }`, nil); r.code() != "" {
		t.Errorf("author deletes: %s", r.raw)
	}
	// Field errors name the GraphQL argument paths.
	r := gql(t, in.URL, admin, `mutation { createProduct(input: {name: "X", priceCents: -1, category: "toys"}) { id } }`, nil)
	if len(r.Errors) != 1 || len(r.Errors[0].Extensions.Fields) != 1 || r.Errors[0].Extensions.Fields[0].Field != "input.priceCents" {
		t.Errorf("field paths: %s", r.raw)
	}
	// updateProduct with the current etag applies; the tag it returns is REST's ETag.
	r = gql(t, in.URL, admin, `query($id: ID!) { product(id: $id) { etag } }`, map[string]any{"id": pid})
	var cur struct{ Product struct{ Etag string } }
	json.Unmarshal(r.Data, &cur)
	r = gql(t, in.URL, admin, `mutation($id: ID!, $tag: String) { updateProduct(id: $id, input: {stock: 7}, ifMatch: $tag) { stock etag } }`, map[string]any{"id": pid, "tag": cur.Product.Etag})
	res, _ := client{t: t, url: in.URL}.do("GET", "/api/products/"+pid, "", nil)
	if !strings.Contains(string(r.raw), `"stock":7`) || !strings.Contains(string(r.raw), strings.ReplaceAll(res.Header.Get("ETag"), `"`, `\"`)) {
		t.Errorf("conditional update: %s; REST ETag %s", r.raw, res.Header.Get("ETag"))
	}
}

// TestGraphQLPagination walks products forward and a room's history backward.
func TestGraphQLPagination(t *testing.T) {
	t.Parallel()
	in, _, ann, _ := chatUsers(t, nil)

	// Forward: the demo catalog, 40 at a time, is every product once, in REST's order.
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		r := gqlRetrying(t, in.URL, "", `query($after: String) { products(first: 40, after: $after, sort: NAME) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": nilIfEmpty(after)})
		var d struct {
			Products struct {
				Edges    []struct{ Node struct{ ID string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil || len(r.Errors) > 0 {
			t.Fatalf("page %d: %s", pages, r.raw)
		}
		for _, e := range d.Products.Edges {
			ids = append(ids, e.Node.ID)
		}
		if !d.Products.PageInfo.HasNextPage {
			break
		}
		after = *d.Products.PageInfo.EndCursor
	}
	code, b := apiJSON(t, "GET", in.URL+"/api/products?sort=name&limit=100", "", "")
	var rest struct{ Items []struct{ ID string } }
	json.Unmarshal(b, &rest)
	if code != 200 || len(ids) != 240 || ids[0] != rest.Items[0].ID || ids[99] != rest.Items[99].ID {
		t.Fatalf("walked %d products; REST %d first %v", len(ids), code, ids[:1])
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}

	// Backward: 25 messages, 10 at a time from the newest, each page oldest first.
	gql(t, in.URL, ann, `mutation { createRoom(slug: "paging", name: "Paging") { slug } }`, nil)
	for i := range 25 {
		if r := gql(t, in.URL, ann, fmt.Sprintf(`mutation { sendMessage(room: "paging", text: "m%02d") { id } }`, i), nil); len(r.Errors) > 0 {
			t.Fatal(string(r.raw))
		}
	}
	var texts []string
	before := ""
	for pages := 1; ; pages++ {
		r := gql(t, in.URL, ann, `query($before: String) { messages(room: "paging", last: 10, before: $before) { edges { node { text author { name } } } pageInfo { hasPreviousPage startCursor } } }`, map[string]any{"before": nilIfEmpty(before)})
		var d struct {
			Messages struct {
				Edges []struct {
					Node struct {
						Text   string
						Author struct{ Name string }
					}
				}
				PageInfo struct {
					HasPreviousPage bool
					StartCursor     string
				}
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil || len(r.Errors) > 0 {
			t.Fatalf("history page %d: %s", pages, r.raw)
		}
		var page []string
		for _, e := range d.Messages.Edges {
			if e.Node.Author.Name != "Ann" {
				t.Fatalf("author: %+v", e.Node)
			}
			page = append(page, e.Node.Text)
		}
		texts = append(page, texts...)
		if !d.Messages.PageInfo.HasPreviousPage {
			if pages != 3 {
				t.Fatalf("%d pages; want 3", pages)
			}
			break
		}
		before = d.Messages.PageInfo.StartCursor
	}
	if len(texts) != 25 || texts[0] != "m00" || texts[24] != "m24" || texts[10] != "m10" {
		t.Fatalf("history backwards: %v", texts)
	}
}

// gqlRetrying is gql as a client should use it: an UNAVAILABLE answer (a list stopped at the
// server's query timeout, which a machine busy with the whole suite can reach) is retried.
func gqlRetrying(t *testing.T, url, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r := gql(t, url, token, query, vars)
		if r.code() != "UNAVAILABLE" || attempt == 5 {
			return r
		}
		time.Sleep(time.Second)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nodeTools returns node and scripts/graphql once make test has installed the clients
// (scripts/graphql-tools.sh); without them the test is skipped, or fails under CI=true.
func nodeTools(t *testing.T) (node, dir string) {
	t.Helper()
	dir = "../../scripts/graphql"
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(dir + "/node_modules/graphql-ws")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or the GraphQL clients are missing (bash scripts/graphql-tools.sh installs them): %v", err)
		}
		t.Skipf("node or the GraphQL clients are missing (bash scripts/graphql-tools.sh installs them): %v", err)
	}
	return node, dir
}

// TestGraphQLOverHTTPAudit runs the graphql-http audit suite against a live server: every
// MUST passes, and every SHOULD that does not is listed in the README with its reason.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	t.Parallel()
	node, dir := nodeTools(t)
	in := start(t, map[string]string{"PLAZA_RATE_LIMIT": "0"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, dir+"/audit.mjs", in.URL+"/graphql").Output()
	if err != nil {
		t.Fatalf("audit: %v %s", err, out)
	}
	var results []struct{ ID, Name, Status, Reason string }
	if err := json.Unmarshal(out, &results); err != nil || len(results) < 30 {
		t.Fatalf("audit output (%v): %s", err, out)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## GraphQL\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, r := range results {
		switch {
		case r.Status == "ok":
		case strings.HasPrefix(r.Name, "MUST"):
			t.Errorf("MUST failed: %s %s: %s", r.ID, r.Name, r.Reason)
		case !strings.Contains(section, "`"+r.ID+"`"):
			t.Errorf("SHOULD failed and is not listed in the README's GraphQL section: %s %s: %s", r.ID, r.Name, r.Reason)
		}
	}
}

// subscriber is one graphql-ws client process (scripts/graphql/subscribe.mjs); lines
// receives what it prints, one JSON object a line, and is closed when it exits.
type subscriber struct {
	lines chan map[string]json.RawMessage
}

func subscribe(t *testing.T, baseURL, token, query string, mode ...string) *subscriber {
	t.Helper()
	node, dir := nodeTools(t)
	args := append([]string{dir + "/subscribe.mjs", "ws" + strings.TrimPrefix(baseURL, "http") + "/graphql", token, query}, mode...)
	cmd := exec.Command(node, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{lines: make(chan map[string]json.RawMessage, 16)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return s
}

// next returns the client's next line, failing after 30 s or when the client ended.
func (s *subscriber) next(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	select {
	case m, ok := <-s.lines:
		if !ok {
			t.Fatal("the graphql-ws client ended without a word")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("the graphql-ws client said nothing for 30 s")
		return nil
	}
}

// TestGraphQLSubscriptionsAcrossInstances: a real graphql-ws client on instance B
// subscribes to productChanged, a REST update on instance A (PostgreSQL + Redis shared)
// reaches it; an invalid token in connection_init is refused with close code 4403.
func TestGraphQLSubscriptionsAcrossInstances(t *testing.T) {
	t.Parallel()
	nodeTools(t)
	rs := redistest.Start(t)
	env := clusterEnv(t, rs.URL())
	a, b := start(t, env), start(t, env)
	admin := login(t, a.URL)
	r := gql(t, a.URL, admin, `mutation { createProduct(input: {name: "Live Lamp", priceCents: 100, category: "lighting"}) { id } }`, nil)
	var d struct{ CreateProduct struct{ ID string } }
	if json.Unmarshal(r.Data, &d); d.CreateProduct.ID == "" {
		t.Fatalf("create: %s", r.raw)
	}

	refused := subscribe(t, b.URL, "not-a-token", `subscription { productChanged { type } }`)
	if m := refused.next(t); string(m["closed"]) != "4403" {
		t.Fatalf("invalid token: %v; want closed 4403", m)
	}

	sub := subscribe(t, b.URL, admin, `subscription { productChanged(category: "lighting") { type product { id name } } }`)
	if m := sub.next(t); string(m["connected"]) != "true" {
		t.Fatalf("connect: %v", m)
	}
	// The subscription is live shortly after connecting; update until the event arrives.
	for i := 0; ; i++ {
		cl := client{t: t, url: a.URL, token: admin}
		if res, body := cl.do("PATCH", "/api/products/"+d.CreateProduct.ID, fmt.Sprintf(`{"stock":%d}`, i), map[string]string{"Content-Type": "application/merge-patch+json"}); res.StatusCode != 200 {
			t.Fatalf("REST update: %d %s", res.StatusCode, body)
		}
		select {
		case m := <-sub.lines:
			if !strings.Contains(string(m["next"]), `"type":"UPDATED"`) || !strings.Contains(string(m["next"]), d.CreateProduct.ID) {
				t.Fatalf("event: %v", m)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if i > 100 {
			t.Fatal("no event within 20 s of updates")
		}
	}
}

// TestGraphQLSubscriptionsEndWithSessions: the graphql-ws subscription of a user who logs
// out, and of one an admin deletes, is closed with 4403 at the next session check (a third
// of the presence TTL), as their /ws connections are; another user's subscription keeps
// receiving.
func TestGraphQLSubscriptionsEndWithSessions(t *testing.T) {
	t.Parallel()
	nodeTools(t)
	in, admin, _, _ := chatUsers(t, map[string]string{"PLAZA_PRESENCE_TTL": "900ms"})
	registerAndSignIn(t, in.URL, "Cid")
	cid := signIn(t, in.URL, "cid@example.com", strongPassword)
	dee, eve := registerAndSignIn(t, in.URL, "Dee"), registerAndSignIn(t, in.URL, "Eve")
	r := gql(t, in.URL, admin, `mutation { createProduct(input: {name: "Session Lamp", priceCents: 100, category: "lighting"}) { id } }`, nil)
	var d struct{ CreateProduct struct{ ID string } }
	if json.Unmarshal(r.Data, &d); d.CreateProduct.ID == "" {
		t.Fatalf("create: %s", r.raw)
	}
	product := d.CreateProduct.ID
	stock := 0
	update := func() {
		stock++
		cl := client{t: t, url: in.URL, token: admin}
		if res, body := cl.do("PATCH", "/api/products/"+product, fmt.Sprintf(`{"stock":%d}`, stock), map[string]string{"Content-Type": "application/merge-patch+json"}); res.StatusCode != 200 {
			t.Fatalf("REST update: %d %s", res.StatusCode, body)
		}
	}
	// receives updates until s reports one (a subscription is live shortly after its ack).
	receives := func(name string, s *subscriber) {
		t.Helper()
		for i := 0; i < 100; i++ {
			update()
			select {
			case m, ok := <-s.lines:
				if !ok || m["next"] == nil {
					t.Fatalf("%s's subscription: %v, want an event", name, m)
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		t.Fatalf("%s's subscription received nothing within 20 s of updates", name)
	}
	// closedForbidden reads s until it reports its socket closed, which must be 4403 within
	// 10 s (the checks run every 300 ms).
	closedForbidden := func(name string, s *subscriber) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-s.lines:
				switch {
				case !ok:
					t.Fatalf("%s's client ended without reporting a close", name)
				case m["closed"] != nil:
					if string(m["closed"]) != "4403" {
						t.Fatalf("%s's socket closed with %s, want 4403", name, m["closed"])
					}
					return
				case m["next"] == nil:
					t.Fatalf("%s's subscription: %v, want the socket closed", name, m)
				}
			case <-deadline:
				t.Fatalf("%s's subscription was still open 10 s after their session ended", name)
			}
		}
	}
	const query = `subscription { productChanged(category: "lighting") { type product { id stock } } }`
	subs := map[string]*subscriber{}
	for name, token := range map[string]string{"Cid": cid.AccessToken, "Dee": dee, "Eve": eve} {
		s := subscribe(t, in.URL, token, query, "stream")
		if m := s.next(t); string(m["connected"]) != "true" {
			t.Fatalf("%s connecting: %v", name, m)
		}
		receives(name, s)
		subs[name] = s
	}
	drain := func(s *subscriber) {
		for {
			select {
			case <-s.lines:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	drain(subs["Eve"])

	if code, b := apiJSON(t, "POST", in.URL+"/api/auth/logout", cid.AccessToken, `{"refresh_token":"`+cid.RefreshToken+`"}`); code != 204 {
		t.Fatalf("logout: %d %s", code, b)
	}
	closedForbidden("Cid", subs["Cid"])
	drain(subs["Eve"])
	receives("Eve", subs["Eve"])

	code, b := apiJSON(t, "GET", in.URL+"/api/users/me", dee, "")
	var me struct{ ID string }
	if json.Unmarshal(b, &me); code != 200 || me.ID == "" {
		t.Fatalf("me: %d %s", code, b)
	}
	if code, b := apiJSON(t, "DELETE", in.URL+"/api/users/"+me.ID, admin, ""); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	closedForbidden("Dee", subs["Dee"])
	drain(subs["Eve"])
	receives("Eve", subs["Eve"])
}
