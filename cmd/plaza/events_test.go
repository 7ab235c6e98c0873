package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/redistest"
)

// sseEvent is one event read from /api/events.
type sseEvent struct{ ID, Event, Data string }

type sseStream struct {
	t      *testing.T
	res    *http.Response
	lines  *bufio.Reader
	lastID string
}

// openEvents opens /api/events with query and header, failing unless it answers 200.
func openEvents(t *testing.T, baseURL, query string, header http.Header) *sseStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", baseURL+"/api/events"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sseStream{t: t, res: res, lines: bufio.NewReader(res.Body)}
}

// next returns the next event with data (id-only blocks just move lastID), within 10 s.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { s.res.Body.Close() })
	defer timer.Stop()
	var ev sseEvent
	for {
		line, err := s.lines.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading events: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.ID != "" {
				s.lastID = ev.ID
			}
			if ev.Data != "" {
				return ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[6:]
		}
	}
}

// createProduct makes a product as admin and returns its name.
func createProduct(t *testing.T, url, admin, name string) {
	t.Helper()
	code, b := apiJSON(t, "POST", url+"/api/products", admin,
		`{"name":"`+name+`","description":"d","price_cents":100,"currency":"EUR","category":"books","subcategory":"fiction","stock":1}`)
	if code != 201 {
		t.Fatalf("create product: %d %s", code, b)
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	in, admin, ann, bob := chatUsers(t, nil)
	all := openEvents(t, in.URL, "", nil)
	updatesOnly := openEvents(t, in.URL, "?types=product.updated", nil)
	annStream := openEvents(t, in.URL, "?ticket="+ticket(t, in.URL, ann), nil)
	if code, _ := apiJSON(t, "GET", in.URL+"/api/events?types=secret.thing", "", ""); code != 400 {
		t.Fatalf("unknown type filter: %d", code)
	}

	createProduct(t, in.URL, admin, "First Book")
	if ev := all.next(); ev.Event != "product.created" || !strings.Contains(ev.Data, "First Book") {
		t.Fatalf("anonymous got %+v", ev)
	}
	resumeFrom := all.lastID
	// Bob's and Ann's own changes: only Ann's reaches Ann, nothing reaches the anonymous.
	for _, u := range []struct{ token, name string }{{bob, "Bobby"}, {ann, "Annie"}} {
		code, b := apiJSON(t, "GET", in.URL+"/api/users/me", u.token, "")
		id := strings.Split(strings.Split(string(b), `"id":"`)[1], `"`)[0]
		if code, b = apiJSON(t, "PATCH", in.URL+"/api/users/"+id, u.token, `{"name":"`+u.name+`"}`); code != 200 {
			t.Fatalf("rename: %d %s", code, b)
		}
	}
	createProduct(t, in.URL, admin, "Second Book")
	if ev := annStream.next(); ev.Event != "product.created" {
		t.Fatalf("Ann first got %+v", ev)
	}
	// Her rename and the second book come on different bus streams, whose order relative
	// to each other a stream does not promise (each keeps its own): both, and nothing of
	// Bob's.
	var sawRename, sawBook bool
	for range 2 {
		switch ev := annStream.next(); {
		case ev.Event == "user.updated" && strings.Contains(ev.Data, "Annie") && !sawRename:
			sawRename = true
		case ev.Event == "product.created" && strings.Contains(ev.Data, "Second Book") && !sawBook:
			sawBook = true
		default:
			t.Fatalf("Ann got %+v, want her own user.updated and the second book only", ev)
		}
	}
	if ev := all.next(); ev.Event != "product.created" || !strings.Contains(ev.Data, "Second Book") {
		t.Fatalf("anonymous then got %+v (user events must not reach it)", ev)
	}

	// Resume: exactly what came after the ID, then live.
	resumed := openEvents(t, in.URL, "", http.Header{"Last-Event-Id": {resumeFrom}})
	if ev := resumed.next(); !strings.Contains(ev.Data, "Second Book") {
		t.Fatalf("resumed with %+v", ev)
	}
	code, b := apiJSON(t, "GET", in.URL+"/api/products?limit=1", "", "")
	id := strings.Split(strings.Split(string(b), `"id":"`)[1], `"`)[0]
	if code, b = apiJSON(t, "PATCH", in.URL+"/api/products/"+id, admin, `{"stock":7}`); code != 200 {
		t.Fatalf("patch product: %d %s", code, b)
	}
	for _, s := range []*sseStream{resumed, updatesOnly} {
		if ev := s.next(); ev.Event != "product.updated" {
			t.Fatalf("after resume / filtered: %+v", ev)
		}
	}
	// An old ID whose successors are all still retained is no gap: everything replays.
	old := openEvents(t, in.URL, "?last_event_id=1-0~", nil)
	if ev := old.next(); !strings.Contains(ev.Data, "First Book") {
		t.Fatalf("an old ID within the history got %+v", ev)
	}
	if code, _ := apiJSON(t, "GET", in.URL+"/api/events?last_event_id=garbage", "", ""); code != 400 {
		t.Fatalf("malformed ID: %d", code)
	}
}

// TestRealtimeAcrossInstances runs two instances on one PostgreSQL and one Redis: a ticket
// from A works once on B, messages and presence cross, SSE events cross, and 500 SSE
// subscribers on one instance cost about as many Redis connections as none.
func TestRealtimeAcrossInstances(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	env := clusterEnv(t, rs.URL())
	a, b := start(t, env), start(t, env)
	admin := login(t, a.URL)
	ann, bob := registerAndSignIn(t, a.URL, "Ann"), registerAndSignIn(t, b.URL, "Bob")

	tk := ticket(t, a.URL, ann)
	ca, code := dialWS(t, b.URL, "?ticket="+tk, nil)
	if ca == nil {
		t.Fatalf("A's ticket on B: %d", code)
	}
	if _, code := dialWS(t, a.URL, "?ticket="+tk, nil); code != 401 {
		t.Fatalf("ticket reused on A after B: %d", code)
	}
	cb := connect(t, a.URL, bob)
	ca.send(`{"type":"join","room":"general"}`)
	ca.next("joined")
	cb.send(`{"type":"join","room":"general"}`)
	cb.next("joined")
	ca.presenceOf("Ann,Bob")
	cb.send(`{"type":"message","room":"general","text":"across","client_id":"x"}`)
	if m := ca.next("message").msg(); m.Text != "across" || m.UserName != "Bob" {
		t.Fatalf("message across instances: %+v", m)
	}
	code, body := apiJSON(t, "GET", b.URL+"/api/rooms", ann, "")
	if code != 200 || !strings.Contains(string(body), `"slug":"general","name":"General","created_at":"2026-01-01T00:00:00Z","members":2`) {
		t.Fatalf("rooms on B: %d %s", code, body)
	}
	// A member whose connection drops without a leave frame is gone for the other
	// instance's members too.
	cb.c.CloseNow()
	ca.presenceOf("Ann")

	events := openEvents(t, b.URL, "", nil)
	createProduct(t, a.URL, admin, "Across Book")
	if ev := events.next(); ev.Event != "product.created" || !strings.Contains(ev.Data, "Across Book") {
		t.Fatalf("SSE across instances: %+v", ev)
	}

	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })

	// Past the retained 10,000 events, an old ID gets a reset.
	pipe := rdb.Pipeline()
	for range 10_300 {
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: "plaza:bus:catalog", MaxLen: 10_000, Approx: true,
			Values: []any{"event", `{"type":"product.filler","occurred_at":"2026-01-01T00:00:00Z","data":{}}`}})
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ev := openEvents(t, a.URL, "?last_event_id=1-0~", nil).next(); ev.Event != "reset" {
		t.Fatalf("an ID older than the history got %+v, want reset", ev)
	}
	clients := func() int {
		list, err := rdb.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "\n")
	}
	before := clients()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tr := &http.Transport{MaxConnsPerHost: 0, DialContext: (&net.Dialer{}).DialContext}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	const subscribers = 500
	for range subscribers {
		req, _ := http.NewRequestWithContext(ctx, "GET", b.URL+"/api/events", nil)
		res, err := hc.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("subscriber: %v", err)
		}
		defer res.Body.Close()
	}
	if after := clients(); after > before+3 {
		t.Fatalf("%d SSE subscribers raised Redis clients from %d to %d", subscribers, before, after)
	}
}
