package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// frame is any server frame; fields absent from its type stay empty.
type frame struct {
	Type      string
	Room      string
	Recovered bool
	History   []chatMessage
	Members   []struct{ ID, Name string }
	Message   json.RawMessage // a chatMessage, or an error's text
	ID        string
	UserID    string `json:"user_id"`
	UserName  string `json:"user_name"`
	Code      string
	Ref       string
}

// msg is the message a message frame carries.
func (f frame) msg() chatMessage {
	var m chatMessage
	json.Unmarshal(f.Message, &m)
	return m
}

type chatMessage struct {
	ID       string
	Room     string
	UserID   string `json:"user_id"`
	UserName string `json:"user_name"`
	Text     string
	ClientID string `json:"client_id"`
}

// wsConn is a test client over a real socket.
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

// dialWS opens /ws on in with header (an Authorization or Origin) and query; it returns
// the HTTP status of a refused upgrade.
func dialWS(t *testing.T, baseURL, query string, header http.Header) (*wsConn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/ws"+query, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		if res == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, res.StatusCode
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &wsConn{t: t, c: c}, http.StatusSwitchingProtocols
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// connect opens an authenticated connection or fails the test.
func connect(t *testing.T, baseURL, token string) *wsConn {
	t.Helper()
	c, code := dialWS(t, baseURL, "", bearer(token))
	if c == nil {
		t.Fatalf("upgrade refused: %d", code)
	}
	return c
}

func (w *wsConn) send(v string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(v)); err != nil {
		w.t.Fatalf("send %s: %v", v, err)
	}
}

// next reads frames until one of type typ (others are skipped), within 10 s.
func (w *wsConn) next(typ string) frame {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			w.t.Fatalf("undecodable frame %s", b)
		}
		if f.Type == typ {
			return f
		}
	}
}

// presenceOf waits for a presence frame naming exactly names (sorted, comma-joined).
func (w *wsConn) presenceOf(names string) {
	w.t.Helper()
	for {
		f := w.next("presence")
		var got []string
		for _, m := range f.Members {
			got = append(got, m.Name)
		}
		if strings.Join(got, ",") == names {
			return
		}
	}
}

// closeStatus reads until the connection ends and returns its close code.
func (w *wsConn) closeStatus() websocket.StatusCode {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, _, err := w.c.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				w.t.Fatal("the connection was not closed")
			}
			return websocket.CloseStatus(err)
		}
	}
}

// chatUsers starts an instance with env plus an admin, registers ann and bob, and returns
// the instance and the three tokens.
func chatUsers(t *testing.T, env map[string]string) (in *instance, admin, ann, bob string) {
	t.Helper()
	vars := map[string]string{"PLAZA_ADMIN_EMAIL": adminEmail, "PLAZA_ADMIN_PASSWORD": adminPassword, "PLAZA_RATE_LIMIT": "0"}
	for k, v := range env {
		vars[k] = v
	}
	in = start(t, vars)
	return in, login(t, in.URL), registerAndSignIn(t, in.URL, "Ann"), registerAndSignIn(t, in.URL, "Bob")
}

func registerAndSignIn(t *testing.T, url, name string) string {
	t.Helper()
	email := strings.ToLower(name) + "@example.com"
	if code, b := apiJSON(t, "POST", url+"/api/users", "", `{"name":"`+name+`","email":"`+email+`","password":"`+strongPassword+`"}`); code != 201 && code != 409 {
		t.Fatalf("register %s: %d %s", name, code, b)
	}
	return signIn(t, url, email, strongPassword).AccessToken
}

func ticket(t *testing.T, url, token string) string {
	t.Helper()
	code, b := apiJSON(t, "POST", url+"/api/auth/ws-ticket", token, "")
	var tk struct {
		Ticket    string
		ExpiresIn int `json:"expires_in"`
	}
	if code != 200 || json.Unmarshal(b, &tk) != nil || tk.Ticket == "" || tk.ExpiresIn != 30 {
		t.Fatalf("ws-ticket: %d %s", code, b)
	}
	return tk.Ticket
}

func TestWebSocketAuthBeforeUpgrade(t *testing.T) {
	t.Parallel()
	in, _, ann, _ := chatUsers(t, map[string]string{"PLAZA_CORS_ORIGINS": "https://shop.example"})
	if _, code := dialWS(t, in.URL, "", nil); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
	if _, code := dialWS(t, in.URL, "", bearer("not-a-token")); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	h := bearer(ann)
	h.Set("Origin", "https://evil.example")
	if _, code := dialWS(t, in.URL, "", h); code != 403 {
		t.Fatalf("foreign origin: %d", code)
	}
	for _, origin := range []string{"https://shop.example", "http://" + in.Addr} {
		h.Set("Origin", origin)
		if c, code := dialWS(t, in.URL, "", h); c == nil {
			t.Fatalf("origin %s: %d", origin, code)
		}
	}
	if code, _ := apiJSON(t, "POST", in.URL+"/api/auth/ws-ticket", "", ""); code != 401 {
		t.Fatalf("anonymous ticket: %d", code)
	}
	tk := ticket(t, in.URL, ann)
	c, code := dialWS(t, in.URL, "?ticket="+tk, nil)
	if c == nil {
		t.Fatalf("ticket: %d", code)
	}
	c.send(`{"type":"join","room":"general"}`)
	if f := c.next("joined"); len(f.Members) != 1 || f.Members[0].Name != "Ann" {
		t.Fatalf("joined with a ticket as %+v", f.Members)
	}
	if _, code := dialWS(t, in.URL, "?ticket="+tk, nil); code != 401 {
		t.Fatalf("reused ticket: %d", code)
	}
	if _, code := dialWS(t, in.URL, "?ticket=made-up", nil); code != 401 {
		t.Fatalf("made-up ticket: %d", code)
	}
}

func TestChatRoomsOverWebSocket(t *testing.T) {
	t.Parallel()
	in, admin, ann, bob := chatUsers(t, nil)
	a, b := connect(t, in.URL, ann), connect(t, in.URL, bob)

	a.send(`{"type":"ping"}`)
	a.next("pong")
	a.send(`{"type":"join","room":"general"}`)
	if f := a.next("joined"); f.Room != "general" || f.Recovered || len(f.History) != 0 {
		t.Fatalf("first join: %+v", f)
	}
	b.send(`{"type":"join","room":"general"}`)
	b.next("joined")
	a.presenceOf("Ann,Bob")

	b.send(`{"type":"typing","room":"general"}`)
	if f := a.next("typing"); f.UserName != "Bob" || f.Room != "general" {
		t.Fatalf("typing: %+v", f)
	}
	b.send(`{"type":"message","room":"general","text":"hello","client_id":"b-1"}`)
	for _, c := range []*wsConn{a, b} {
		if f := c.next("message"); f.msg().Text != "hello" || f.msg().UserName != "Bob" || f.msg().ClientID != "b-1" || f.msg().ID == "" {
			t.Fatalf("message: %+v", f)
		}
	}

	// Errors are frames with the vocabulary's codes; the connection stays.
	for send, want := range map[string]string{
		`{"type":"shout"}`:                 "bad_request",
		`not json`:                         "bad_request",
		`{"type":"join","room":"nowhere"}`: "not_found",
		`{"type":"message","room":"general","text":""}`:                                                    "invalid",
		`{"type":"message","room":"elsewhere","text":"x"}`:                                                 "forbidden",
		`{"type":"message","room":"general","text":"` + strings.Repeat("x", 2001) + `","client_id":"big"}`: "invalid",
	} {
		a.send(send)
		if f := a.next("error"); f.Code != want {
			t.Fatalf("%.40s: error %+v, want %s", send, f, want)
		}
	}

	// Rooms over REST, with live member counts.
	if code, body := apiJSON(t, "POST", in.URL+"/api/rooms", ann, `{"slug":"lobby","name":"Lobby"}`); code != 201 {
		t.Fatalf("create room: %d %s", code, body)
	}
	if code, _ := apiJSON(t, "POST", in.URL+"/api/rooms", "", `{"slug":"x","name":"X"}`); code != 401 {
		t.Fatalf("anonymous create: %d", code)
	}
	code, body := apiJSON(t, "GET", in.URL+"/api/rooms", bob, "")
	var rooms struct {
		Items []struct {
			Slug    string
			Members int
		}
	}
	if json.Unmarshal(body, &rooms); code != 200 || len(rooms.Items) != 2 || rooms.Items[0].Slug != "general" || rooms.Items[0].Members != 2 || rooms.Items[1].Members != 0 {
		t.Fatalf("rooms: %d %s", code, body)
	}

	// Delete: the author and an admin may, nobody else.
	a.send(`{"type":"message","room":"general","text":"second"}`)
	second := a.next("message").msg()
	b.next("message")
	first := ""
	code, body = apiJSON(t, "GET", in.URL+"/api/rooms/general/messages?limit=1", bob, "")
	var page struct {
		Items      []chatMessage
		NextCursor string `json:"next_cursor"`
	}
	if json.Unmarshal(body, &page); code != 200 || len(page.Items) != 1 || page.Items[0].ID != second.ID || page.NextCursor == "" {
		t.Fatalf("history page 1: %d %s", code, body)
	}
	code, body = apiJSON(t, "GET", in.URL+"/api/rooms/general/messages?limit=1&before="+page.NextCursor, bob, "")
	if json.Unmarshal(body, &page); code != 200 || len(page.Items) != 1 || page.Items[0].Text != "hello" {
		t.Fatalf("history page 2: %d %s", code, body)
	}
	first = page.Items[0].ID
	if code, _ := apiJSON(t, "DELETE", in.URL+"/api/rooms/general/messages/"+first, ann, ""); code != 403 {
		t.Fatalf("Ann deletes Bob's message: %d", code)
	}
	if code, _ := apiJSON(t, "DELETE", in.URL+"/api/rooms/general/messages/"+first, bob, ""); code != 204 {
		t.Fatalf("Bob deletes his message: %d", code)
	}
	if code, _ := apiJSON(t, "DELETE", in.URL+"/api/rooms/general/messages/"+second.ID, admin, ""); code != 204 {
		t.Fatalf("admin deletes Ann's message: %d", code)
	}
	for _, id := range []string{first, second.ID} {
		if f := a.next("message_deleted"); f.ID != id || f.Room != "general" {
			t.Fatalf("message_deleted %+v, want %s", f, id)
		}
	}

	b.send(`{"type":"leave","room":"general"}`)
	a.presenceOf("Ann")

	// Limits: a frame over 16 KiB closes with 1009; more than 10 frames a second get
	// rate_limited, and a flood closes with 1008.
	for range 25 {
		b.send(`{"type":"ping"}`)
	}
	if f := b.next("error"); f.Code != "rate_limited" {
		t.Fatalf("flood: %+v", f)
	}
	for range 25 {
		b.send(`{"type":"ping"}`)
	}
	if code := b.closeStatus(); code != websocket.StatusPolicyViolation {
		t.Fatalf("persistent flood closed with %d, want 1008", code)
	}
	a.send(`{"type":"message","room":"general","text":"` + strings.Repeat("x", 17<<10) + `"}`)
	if code := a.closeStatus(); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversize frame closed with %d, want 1009", code)
	}
}

func TestChatRecoveryAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"PLAZA_DATA_DIR": dir}
	in, _, ann, bob := chatUsers(t, env)
	a, b := connect(t, in.URL, ann), connect(t, in.URL, bob)
	for _, c := range []*wsConn{a, b} {
		c.send(`{"type":"join","room":"general"}`)
		c.next("joined")
	}
	b.send(`{"type":"message","room":"general","text":"seen"}`)
	last := a.next("message").msg().ID
	b.next("message") // b's own echo of "seen": each echo below is then the message just sent
	a.c.CloseNow()    // dropped, not left
	for _, text := range []string{"m1", "m2", "m3"} {
		b.send(`{"type":"message","room":"general","text":"` + text + `"}`)
		if got := b.next("message").msg().Text; got != text {
			t.Fatalf("echo of %q: %q", text, got)
		}
	}
	a = connect(t, in.URL, ann)
	a.send(`{"type":"join","room":"general","since":"` + last + `"}`)
	f := a.next("joined")
	if !f.Recovered || len(f.History) != 3 || f.History[0].Text != "m1" || f.History[2].Text != "m3" {
		t.Fatalf("recovery: recovered=%v %+v", f.Recovered, f.History)
	}
	a.send(`{"type":"leave","room":"general"}`)
	a.send(`{"type":"join","room":"general","since":"00000000-0000-7000-8000-000000000000"}`)
	if f := a.next("joined"); f.Recovered || len(f.History) != 4 || f.History[0].Text != "seen" {
		t.Fatalf("since past the history: recovered=%v %d messages", f.Recovered, len(f.History))
	}

	// Close 1001 on shutdown; the history survives the restart.
	in.stop(t)
	for _, c := range []*wsConn{a, b} {
		if code := c.closeStatus(); code != websocket.StatusGoingAway {
			t.Fatalf("on shutdown: close %d, want 1001", code)
		}
	}
	in = start(t, map[string]string{"PLAZA_DATA_DIR": dir, "PLAZA_RATE_LIMIT": "0"})
	a = connect(t, in.URL, ann)
	a.send(`{"type":"join","room":"general","since":"` + last + `"}`)
	if f := a.next("joined"); !f.Recovered || len(f.History) != 3 || f.History[2].Text != "m3" {
		t.Fatalf("after restart: recovered=%v %+v", f.Recovered, f.History)
	}
}
