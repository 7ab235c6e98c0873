package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"plaza/internal/bus"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// fakeChat lets anyone into any room with no history; the tests publish room traffic on
// the bus themselves, faster than the chat service's rate limits would let clients.
type fakeChat struct{}

func (fakeChat) Join(_ context.Context, room, _, _ string) (chat.Joined, error) {
	return chat.Joined{Room: room, History: []chat.Message{}}, nil
}
func (fakeChat) Leave(context.Context, string, string) error { return nil }
func (fakeChat) Send(context.Context, string, string, string) (chat.Message, error) {
	return chat.Message{}, nil
}
func (fakeChat) Typing(context.Context, string) error                            { return nil }
func (fakeChat) Heartbeat(context.Context, string, string) error                 { return nil }
func (fakeChat) Members(context.Context, string) ([]chat.Member, error)          { return nil, nil }
func (fakeChat) AnnouncePresence(context.Context, string) ([]chat.Member, error) { return nil, nil }

type testServer struct {
	*Server
	mux http.Handler
	url string
	bus bus.Bus
	reg *prometheus.Registry
}

// newTestServer serves /ws and /api/events on a memory bus keeping retain events per
// stream (0: the default). The caller is the user the X-User header names (the
// middleware's job in Plaza).
func newTestServer(t *testing.T, opts Options, retain int) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := bus.NewMemory(bus.MemoryOptions{Retain: retain})
	reg := prometheus.NewRegistry()
	if opts.Chat == nil {
		opts.Chat = fakeChat{}
	}
	opts.Bus, opts.Shutdown, opts.Registerer = b, ctx, reg
	s := New(opts)
	mux := testMux(s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		cancel()
		hs.CloseClientConnections()
		hs.Close()
		b.Close()
	})
	return &testServer{Server: s, mux: mux, url: hs.URL, bus: b, reg: reg}
}

// metric reads one sample of the server's metrics, as Prometheus would scrape it.
func (ts *testServer) metric(t *testing.T, sample string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(ts.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// slowDialer connects with a receive buffer of a few KiB, so that a client that stops
// reading fills the server's socket soon rather than after megabytes. The buffer is set
// before connecting: shrunk later, it would drop data the window had already let in, and
// the server would wait out retransmission timeouts after the client reads again.
func slowDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return d.DialContext(ctx, network, addr)
}

func dialRoom(t *testing.T, ts *testServer, user string, client *http.Client) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-User": {user}}, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","room":"general"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"type":"joined"`) {
		t.Fatalf("join: %s %v", b, err)
	}
	return c
}

// publishUntilCut publishes batches of events made by event on stream until the server
// reports a slow-consumer cut of transport, each batch only once fast has counted it (so
// that only the slow client falls behind); it returns the events published.
func publishUntilCut(t *testing.T, ts *testServer, stream, transport string, received <-chan int, event func(n int) plaza.Event) []plaza.Event {
	t.Helper()
	const batch, maxBatches = 50, 2000 // the bound only guards against a hang
	var sent []plaza.Event
	for range maxBatches {
		for range batch {
			ev, err := ts.bus.Publish(t.Context(), stream, event(len(sent)))
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, ev)
		}
		waitFor(t, received, len(sent))
		if ts.metric(t, `plaza_realtime_slow_consumers_total{transport="`+transport+`"}`) == "1" {
			return sent
		}
	}
	t.Fatalf("%d events and the slow client was never cut", len(sent))
	return nil
}

// waitFor waits until the count on received reaches n.
func waitFor(t *testing.T, received <-chan int, n int) {
	t.Helper()
	for got := 0; got < n; {
		select {
		case got = <-received:
		case <-time.After(30 * time.Second):
			t.Fatalf("the fast client got %d of %d events", got, n)
		}
	}
}

// TestSlowWebSocketIsCut: a member who stops reading is closed with 1013 once its queue is
// full, while a member who reads keeps receiving every message.
func TestSlowWebSocketIsCut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{}, 0)
	fast := dialRoom(t, ts, "fast", nil)
	slow := dialRoom(t, ts, "slow", &http.Client{Transport: &http.Transport{DialContext: slowDialer}})

	received := make(chan int, 1)
	texts := make(chan []string, 1)
	go func() {
		var got []string
		for {
			_, b, err := fast.Read(context.Background())
			if err != nil {
				texts <- got
				return
			}
			var f struct{ Message chat.Message }
			if json.Unmarshal(b, &f) == nil && f.Message.Text != "" {
				got = append(got, f.Message.Text)
				select {
				case <-received:
				default:
				}
				received <- len(got)
			}
		}
	}()
	text := strings.Repeat("x", 1000)
	sent := publishUntilCut(t, ts, chat.Stream("general"), "ws", received, func(n int) plaza.Event {
		ev, _ := plaza.NewEvent(chat.EventMessage, "u", chat.Message{ID: plaza.NewID(), Room: "general", Text: text}, time.Now())
		return ev
	})

	// The slow member reads again: what was written before the cut, then 1013.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n := 0
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
				t.Fatalf("the slow member ended after %d messages with %v, want close 1013", n, err)
			}
			break
		}
		n++
	}
	if n >= len(sent) {
		t.Fatalf("the slow member got all %d messages; it was not cut", n)
	}
	// The fast member is unaffected and still receives.
	if _, err := ts.bus.Publish(t.Context(), chat.Stream("general"), sent[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, received, len(sent)+1)
	fast.CloseNow()
	if got := <-texts; len(got) != len(sent)+1 {
		t.Fatalf("the fast member got %d of %d messages", len(got), len(sent)+1)
	}
}

// TestStalledWriteIsCut: a member who stops reading while its queue still has room is
// disconnected once a write to it has waited writeWait, while a member who reads receives
// everything.
func TestStalledWriteIsCut(t *testing.T) {
	t.Parallel()
	// Long enough that a reader starved of CPU (the race detector on a loaded machine) is
	// not taken for a stalled one: at 500 ms the fast member was cut too, now and then.
	const wait = 3 * time.Second
	ts := newTestServer(t, Options{writeWait: wait}, 0)
	fast := dialRoom(t, ts, "fast", nil)
	slow := dialRoom(t, ts, "slow", &http.Client{Transport: &http.Transport{DialContext: slowDialer}})

	// Frames large enough that fewer than QueueSize fill the sockets between the server
	// and the slow member: 30 MiB, where Linux lets a send buffer grow to 4 MiB by default
	// (net.ipv4.tcp_wmem) and the slow member's receive buffer is a few KiB.
	const frames = 160
	text := strings.Repeat("x", 192<<10)
	start := time.Now()
	for range frames {
		ev, _ := plaza.NewEvent(chat.EventMessage, "u", chat.Message{ID: plaza.NewID(), Room: "general", Text: text}, time.Now())
		if _, err := ts.bus.Publish(t.Context(), chat.Stream("general"), ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for n := 0; n < frames; {
		_, b, err := fast.Read(ctx)
		if err != nil {
			t.Fatalf("the fast member got %d of %d messages: %v", n, frames, err)
		}
		if strings.Contains(string(b), `"type":"message"`) {
			n++
		}
	}
	for ts.metric(t, `plaza_realtime_slow_consumers_total{transport="ws"}`) != "1" {
		if ctx.Err() != nil {
			t.Fatal("the slow member was never cut")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("the slow member was cut after %v, before its write had waited %v", d, wait)
	}
	// The slow member reads again: what was written before the cut, then the end, with no
	// close frame (the connection could not take one).
	n := 0
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 || ctx.Err() != nil {
				t.Fatalf("the slow member ended after %d messages with %v, want the connection dropped", n, err)
			}
			break
		}
		n++
	}
	if n >= frames {
		t.Fatalf("the slow member got all %d messages; it was not cut", n)
	}
}

// sseReader reads an event stream's events (id and data lines) in order.
type sseReader struct {
	r      *bufio.Reader
	lastID string
}

// next returns the next event's id, or an error when the stream ends.
func (s *sseReader) next() (string, error) {
	id, data := "", false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data:
			s.lastID = id
			return id, nil
		case line == "":
			if id != "" {
				s.lastID = id
			}
			id = ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = true
		}
	}
}

func openSSE(t *testing.T, ts *testServer, client *http.Client, lastID string) (*sseReader, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.url+"/api/events?types=product.updated", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("events: %v %v", res, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseReader{r: bufio.NewReader(res.Body)}, res
}

// TestSlowEventStreamIsCut: an SSE client that stops reading is disconnected once its
// queue is full, while a fast one receives everything; the slow one then resumes from its
// last ID and gets exactly what it missed.
func TestSlowEventStreamIsCut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{}, 0)
	fast, _ := openSSE(t, ts, http.DefaultClient, "")
	slowClient := &http.Client{Transport: &http.Transport{DialContext: slowDialer}}
	slow, _ := openSSE(t, ts, slowClient, "")

	received := make(chan int, 1)
	go func() {
		for n := 1; ; n++ {
			if _, err := fast.next(); err != nil {
				return
			}
			select {
			case <-received:
			default:
			}
			received <- n
		}
	}()
	name := strings.Repeat("y", 1000)
	sent := publishUntilCut(t, ts, plaza.StreamCatalog, "sse", received, func(n int) plaza.Event {
		ev, _ := plaza.NewEvent("product.updated", "admin", map[string]any{"id": n, "name": name}, time.Now())
		return ev
	})

	// The slow client reads again: what was written before the cut, then the end.
	var ids []string
	for {
		id, err := slow.next()
		if err != nil {
			break
		}
		ids = append(ids, strings.TrimSuffix(id, idSep))
	}
	if len(ids) >= len(sent) {
		t.Fatalf("the slow client got all %d events; it was not cut", len(ids))
	}
	for i, id := range ids {
		if id != sent[i].ID {
			t.Fatalf("event %d: id %s, want %s", i, id, sent[i].ID)
		}
	}
	// Resumed from its last ID, it gets exactly the rest, then live events.
	resumed, _ := openSSE(t, ts, http.DefaultClient, slow.lastID)
	more, err := ts.bus.Publish(t.Context(), plaza.StreamCatalog, sent[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(sent[len(ids):], more) {
		id, err := resumed.next()
		if err != nil {
			t.Fatal(err)
		}
		if id = strings.TrimSuffix(id, idSep); id != want.ID {
			t.Fatalf("resumed with %s, want %s", id, want.ID)
		}
	}
}

// TestEventStreamReset: on the in-process bus too, resuming from an ID older than the
// retained history gets "event: reset" and then live events, while one within it replays.
func TestEventStreamReset(t *testing.T) {
	t.Parallel()
	const retain = 10
	ts := newTestServer(t, Options{}, retain)
	var sent []plaza.Event
	for range retain + 5 {
		ev, _ := plaza.NewEvent("product.updated", "admin", map[string]any{"id": len(sent)}, time.Now())
		ev, err := ts.bus.Publish(t.Context(), plaza.StreamCatalog, ev)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, ev)
	}
	within, _ := openSSE(t, ts, http.DefaultClient, sent[len(sent)-3].ID+idSep)
	for _, want := range sent[len(sent)-2:] {
		if id, err := within.next(); err != nil || strings.TrimSuffix(id, idSep) != want.ID {
			t.Fatalf("within the history: %s %v, want %s", id, err, want.ID)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hang guard, not a speed
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/api/events", nil)
	req.Header.Set("Last-Event-ID", sent[0].ID+idSep)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	var head []string
	for len(head) < 4 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		head = append(head, strings.TrimSuffix(line, "\n"))
	}
	if head[0] != "retry: 3000" || !strings.HasPrefix(head[1], "id: ") || head[2] != "event: reset" {
		t.Fatalf("an ID past the history began with %q", head)
	}
	// A new event (the bus drops one it has seen by key, so sent[0] again would never come).
	fresh, _ := plaza.NewEvent("product.updated", "admin", map[string]any{"id": "fresh"}, time.Now())
	live, err := ts.bus.Publish(t.Context(), plaza.StreamCatalog, fresh)
	if err != nil {
		t.Fatal(err)
	}
	after := &sseReader{r: r}
	if id, err := after.next(); err != nil || strings.TrimSuffix(id, idSep) != live.ID {
		t.Fatalf("after the reset: %s %v, want %s", id, err, live.ID)
	}
}

// TestFrameBehindTheHandshake: a client that sends its first frame right behind the upgrade
// request, without waiting for the answer, is served that frame; and frames keep coming
// after the connection was idle.
func TestFrameBehindTheHandshake(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{}, 0)
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second)) // a hang guard, not a speed
	join := []byte(`{"type":"join","room":"general"}`)
	// A client frame: FIN + text, masked, its length, the mask key, the masked payload.
	frame := []byte{0x81, 0x80 | byte(len(join)), 1, 2, 3, 4}
	for i, b := range join {
		frame = append(frame, b^byte(i%4+1))
	}
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nX-User: early\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	readText := func() string {
		t.Helper()
		var head [2]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			t.Fatal(err)
		}
		n := int(head[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				t.Fatal(err)
			}
			n = int(ext[0])<<8 | int(ext[1])
		case 127:
			t.Fatal("a frame over 64 KiB")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		return string(payload)
	}
	if got := readText(); !strings.Contains(got, `"type":"joined"`) {
		t.Fatalf("first frame %s, want joined", got)
	}
	for _, text := range []string{"one", "two"} {
		time.Sleep(50 * time.Millisecond) // the queue drains between the two
		ev, _ := plaza.NewEvent(chat.EventMessage, "u", chat.Message{ID: plaza.NewID(), Room: "general", Text: text}, time.Now())
		if _, err := ts.bus.Publish(t.Context(), chat.Stream("general"), ev); err != nil {
			t.Fatal(err)
		}
		if got := readText(); !strings.Contains(got, `"text":"`+text+`"`) {
			t.Fatalf("got %s, want message %q", got, text)
		}
	}
}

// panicChat panics on Send.
type panicChat struct{ fakeChat }

func (panicChat) Send(context.Context, string, string, string) (chat.Message, error) {
	panic("boom")
}

// TestPanicInAFrame: a frame whose handling panics closes that connection with 1011; the
// server and its other connections go on.
func TestPanicInAFrame(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{Chat: panicChat{}}, 0)
	other := dialRoom(t, ts, "other", nil)
	c := dialRoom(t, ts, "sender", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","room":"general","text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusInternalError {
				t.Fatalf("closed with %v, want 1011", err)
			}
			break
		}
	}
	if err := other.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := other.Read(ctx)
		if err != nil {
			t.Fatalf("the other connection: %v", err)
		}
		if strings.Contains(string(b), `"type":"pong"`) {
			break
		}
	}
}

// publishProduct publishes a product.updated event and returns it as the bus stored it.
func publishProduct(t *testing.T, ts *testServer, id string) plaza.Event {
	t.Helper()
	ev, _ := plaza.NewEvent("product.updated", "admin", map[string]any{"id": id}, time.Now())
	ev, err := ts.bus.Publish(t.Context(), plaza.StreamCatalog, ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestEventStreamOverHTTP2: over HTTP/2 (where the HTTP/1.1 connection cannot be taken) the
// stream works as well.
func TestEventStreamOverHTTP2(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{}, 0)
	hs := httptest.NewUnstartedServer(ts.mux)
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(func() { // after the stream's own cleanup
		hs.CloseClientConnections()
		hs.Close()
	})
	ts2 := *ts
	ts2.url = hs.URL
	stream, res := openSSE(t, &ts2, hs.Client(), "")
	if res.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", res.Proto)
	}
	if _, err := stream.r.ReadString('\n'); err != nil { // retry:
		t.Fatal(err)
	}
	want := publishProduct(t, ts, "h2")
	if id, err := stream.next(); err != nil || strings.TrimSuffix(id, idSep) != want.ID {
		t.Fatalf("over HTTP/2: %s %v, want %s", id, err, want.ID)
	}
}

// TestEventStreamEndings: a stream whose client goes away ends without waiting for a
// heartbeat to fail; one the server ends (here, the caller's session) ends its response
// properly, so the client reads to its end without an error.
func TestEventStreamEndings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{
		PresenceTTL: 300 * time.Millisecond,
		CheckSession: func(ctx context.Context) error {
			if p, _ := plaza.PrincipalFrom(ctx); p.UserID == "signed-out" {
				return plaza.Errorf(plaza.EUnauthenticated, "signed out")
			}
			return nil
		},
	}, 0)
	open := func() string { return ts.metric(t, `plaza_realtime_connections{transport="sse"}`) }
	waitOpen := func(want string) {
		t.Helper()
		// Below the heartbeat (15 s), whose writes would otherwise be what notices.
		for deadline := time.Now().Add(10 * time.Second); open() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%s streams open, want %s", open(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitOpen("1")
	cancel()
	res.Body.Close()
	waitOpen("0")

	req, _ = http.NewRequestWithContext(t.Context(), "GET", ts.url+"/api/events", nil)
	req.Header.Set("X-User", "signed-out")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("the ended stream: %v after %q", err, body)
	}
	if !strings.HasPrefix(string(body), "retry: 3000\n") {
		t.Fatalf("the ended stream sent %q", body)
	}
	waitOpen("0")
}

// testMux serves s's /ws and /api/events the way a transport does, with the caller named
// by the X-User header (a user) and refusals answered 400.
func testMux(s *Server) *http.ServeMux {
	mux := http.NewServeMux()
	serve := func(f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-User"); u != "" {
				r = r.WithContext(plaza.WithPrincipal(r.Context(), plaza.Principal{UserID: u, Role: plaza.RoleUser}))
			}
			if err := f(w, r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		}
	}
	mux.Handle("GET /ws", serve(s.ServeWebSocket))
	mux.Handle("GET /api/events", serve(s.ServeEvents))
	return mux
}

// TestNothingStartsOnceWaitBegan: once Wait has begun (the drain's last step), a
// WebSocket is closed with 1001 right after the upgrade and an event stream is refused,
// instead of either slipping past the wait; running under -race, this also checks that a
// connection arriving then does not race the wait.
func TestNothingStartsOnceWaitBegan(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{}, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ts.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-User": {"ann"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("a WebSocket after Wait began: %v, want closed with 1001", err)
	}
	res, err := http.Get(ts.url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Fatal("an event stream started after Wait began")
	}
	if open := ts.metric(t, `plaza_realtime_connections{transport="ws"}`); open != "" && open != "0" {
		t.Fatalf("%s WebSockets counted open", open)
	}
}
