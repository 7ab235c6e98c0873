package realtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"plaza/internal/plaza"
)

// ServeWebSocket serves GET /ws. Before the upgrade it checks the Origin (403), the caller
// (401) and the caller's connection count (429) and returns those errors for the
// transport to answer; after it, it serves the connection until it ends and returns nil.
func (s *Server) ServeWebSocket(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	p, ok, err := s.principal(r)
	if err != nil {
		return err
	}
	if !ok {
		return plaza.Errorf(plaza.EUnauthenticated, "sign in first: send a Bearer access token or a ticket from POST /api/auth/ws-ticket")
	}
	if err := s.hub.reserve(p.UserID); err != nil {
		return err
	}

	unlimitedDeadlines(w)
	// The Origin was checked above, against our own rules (the library's would allow
	// only patterns of hosts, and no "*").
	ws, err := websocket.Accept(upgradeWriter{w}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.hub.unreserve(p.UserID)
		return nil // Accept has answered the bad handshake itself
	}
	ws.SetReadLimit(ReadLimit)

	// The request's context ends when this handler returns, not with the hijacked
	// connection; the connection gets its own, keeping the request's values (request ID,
	// principal).
	// A Bearer token's principal is in the request's context already (the middleware's);
	// a ticket's is added. Each value a connection keeps, it keeps for its life.
	base := context.WithoutCancel(r.Context())
	if cur, ok := plaza.PrincipalFrom(base); !ok || cur != p {
		base = plaza.WithPrincipal(base, p)
	}
	ctx, cancel := context.WithCancel(base)
	c := &conn{
		s: s, id: plaza.NewID(), p: p, ctx: ctx, cancel: cancel, ws: ws,
		limiter: rate.NewLimiter(FrameRate, FrameBurst),
	}
	if !s.track() { // the server is waiting for its connections to end
		cancel()
		ws.Close(websocket.StatusGoingAway, goingAway)
		s.hub.unreserve(p.UserID)
		return nil
	}
	s.m.open.WithLabelValues("ws").Inc()
	s.hub.add(c)
	if s.opts.Shutdown.Err() != nil {
		c.close(websocket.StatusGoingAway, goingAway) // added after the hub closed the others
	}
	// The connection is served on a goroutine of its own and this handler returns: the
	// handler's goroutine has grown its stack through the middleware chain, and net/http
	// keeps the request and its buffers while it runs. An idle connection needs none of it.
	go func() {
		defer s.wg.Done()
		defer s.m.open.WithLabelValues("ws").Dec()
		defer s.hub.unreserve(p.UserID)
		c.serve()
		s.hub.remove(c)
	}()
	return nil
}

// Buffer sizes of an upgraded connection. net/http's are 4 KiB each, and the library keeps
// the buffers it is handed for the connection's life. Client frames are small; a server
// frame larger than the write buffer costs one more write.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 1 << 10
)

// upgradeWriter hands the WebSocket library buffers of wsReadBuffer and wsWriteBuffer
// bytes in place of net/http's.
type upgradeWriter struct{ http.ResponseWriter }

func (w upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// What the client sent after its handshake without waiting for the answer is still in
	// net/http's reader; it is read before the connection.
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		nc = &prefixedConn{Conn: nc, pending: bytes.Clone(pending)}
	}
	return nc, bufio.NewReadWriter(bufio.NewReaderSize(nc, wsReadBuffer), bufio.NewWriterSize(nc, wsWriteBuffer)), nil
}

// prefixedConn reads pending before the connection.
type prefixedConn struct {
	net.Conn
	pending []byte
}

func (c *prefixedConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		return c.Conn.Read(b)
	}
	n := copy(b, c.pending)
	if c.pending = c.pending[n:]; len(c.pending) == 0 {
		c.pending = nil
	}
	return n, nil
}

// conn is one WebSocket connection. Its reader runs on a goroutine for the connection's
// life; its writer only while there is something to write, and its pings on a timer.
// Everything else talks to it through enqueue and close, which never block.
type conn struct {
	s      *Server
	id     string
	p      plaza.Principal
	ctx    context.Context // the caller's; cancelled when the connection has ended
	cancel context.CancelFunc
	ws     *websocket.Conn

	// qmu guards what the writer shares. queue holds the frames for the writer, at most
	// QueueSize, in a slice that exists only while frames wait: an idle connection holds
	// neither a queue nor a writer goroutine.
	qmu     sync.Mutex
	queue   [][]byte
	writing bool // a writer runs, or one has ended the connection
	closing bool
	code    websocket.StatusCode
	reason  string
	writers sync.WaitGroup
	pinger  *time.Timer
	// writeSince is when the write under way began (Server.sinceStart), 0 between writes.
	writeSince atomic.Int64

	limiter *rate.Limiter // only the frame being served uses it
	refused int

	mu sync.Mutex
	// rooms are the rooms joined, at most MaxRooms, nearly always one: a slice holds one
	// room in 16 bytes where a map's first entry allocates a group of 8 (about 200).
	rooms []string
}

// serve runs the connection until either side closes it, then leaves its rooms.
func (c *conn) serve() {
	c.qmu.Lock()
	c.pinger = time.AfterFunc(PingInterval, c.ping)
	c.qmu.Unlock()
	c.read()
	c.close(websocket.StatusNormalClosure, "")
	c.writers.Wait()
	c.qmu.Lock()
	c.pinger.Stop()
	c.qmu.Unlock()
	c.cancel()
	for _, room := range c.joined() {
		c.s.hub.leave(c, room)
	}
}

func (c *conn) joined() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rooms)
}

// read reads client frames until the connection fails or closes, or a frame ends it. A
// frame over ReadLimit makes the library close with 1009.
func (c *conn) read() {
	// Reads end when the connection closes, which every ending does; a context that can
	// end would cost each read (and so each idle connection) a registration with it.
	ctx := context.WithoutCancel(c.ctx)
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil || !c.serveFrame(typ, b) {
			return
		}
	}
}

// serveFrame serves one client frame on a goroutine of its own while the reader waits, and
// reports whether to read on. Serving a frame (a join reads the history) grows a stack far
// past what waiting for the next frame needs, and the reader's would keep that size for
// the connection's life. A panic closes this connection with 1011 and is logged, as the
// middleware does for a request; the server goes on.
func (c *conn) serveFrame(typ websocket.MessageType, b []byte) bool {
	more := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				c.s.log.ErrorContext(c.ctx, "realtime: panic serving a WebSocket frame", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				c.close(websocket.StatusInternalError, "")
			}
		}()
		more = c.frame(typ, b)
	}()
	<-done
	return more
}

// frame serves one client frame and reports whether to read on.
func (c *conn) frame(typ websocket.MessageType, b []byte) bool {
	c.s.wsIn.Inc()
	if !c.limiter.Allow() {
		c.refused++
		if c.refused >= AbuseLimit {
			c.close(websocket.StatusPolicyViolation, "rate limit exceeded repeatedly")
			return false
		}
		c.enqueue(errorFrameOf(&plaza.Error{Code: plaza.ERateLimited, Message: "slow down: at most 10 frames a second"}, ""))
		return true
	}
	c.refused = 0
	if typ != websocket.MessageText {
		c.enqueue(errorFrameOf(plaza.Errorf(plaza.EBadRequest, "frames are JSON text messages"), ""))
		return true
	}
	f, err := decodeFrame(b)
	if err != nil {
		c.enqueue(errorFrameOf(err, ""))
		return true
	}
	if err := c.handle(f); err != nil {
		c.fail(err, f)
	}
	return true
}

// handle runs one client frame.
func (c *conn) handle(f inFrame) error {
	switch f.Type {
	case framePing:
		c.enqueue(mustEncode(pongFrame{Type: "pong"}))
		return nil
	case frameJoin:
		return c.s.hub.join(c, f.Room, f.Since)
	case frameLeave:
		if !c.in(f.Room) {
			return plaza.Errorf(plaza.ENotFound, "not in room %q", f.Room)
		}
		c.s.hub.leave(c, f.Room)
		return nil
	case frameMessage:
		if !c.in(f.Room) {
			return plaza.Errorf(plaza.EForbidden, "join room %q before sending to it", f.Room)
		}
		// The echo through the room is the acknowledgement; nothing else is sent.
		_, err := c.s.opts.Chat.Send(c.ctx, f.Room, f.Text, f.ClientID)
		return err
	case frameTyping:
		if !c.in(f.Room) {
			return plaza.Errorf(plaza.EForbidden, "join room %q first", f.Room)
		}
		return c.s.opts.Chat.Typing(c.ctx, f.Room)
	}
	return plaza.Errorf(plaza.EBadRequest, "unknown frame type %q", f.Type)
}

// fail answers a frame that failed with an error frame; its ref is the client_id of a
// message, so the client knows which send failed. Internal causes go to the log only.
func (c *conn) fail(err error, f inFrame) {
	switch plaza.ErrorCodeOf(err) {
	case plaza.EInternal:
		c.s.log.ErrorContext(c.ctx, "realtime: frame failed", "type", f.Type, "room", f.Room, "user_id", c.p.UserID, "err", err)
	case plaza.EUnavailable:
		c.s.log.WarnContext(c.ctx, "realtime: frame failed", "type", f.Type, "room", f.Room, "err", err)
	}
	c.enqueue(errorFrameOf(err, f.ClientID))
}

func (c *conn) in(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.rooms, room)
}

// enqueue hands a frame to the writer without waiting, starting one if none runs. A full
// queue means the client does not keep up: it is closed with 1013 (try again later) rather
// than let it hold anyone up, and it recovers what it missed by rejoining with since.
func (c *conn) enqueue(b []byte) {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return
	}
	if len(c.queue) >= QueueSize {
		c.qmu.Unlock()
		c.s.m.dropped.WithLabelValues("ws").Inc()
		c.s.m.slowCuts.WithLabelValues("ws").Inc()
		c.close(websocket.StatusTryAgainLater, "too slow: the send queue is full")
		return
	}
	c.queue = append(c.queue, b)
	c.startWriter()
	c.qmu.Unlock()
}

// close has the writer close the connection with code; only the first call counts.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closing {
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	c.startWriter()
}

// startWriter starts a writer unless one runs. c.qmu is held.
func (c *conn) startWriter() {
	if c.writing {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.write()
}

// write sends queued frames until none is left, or sends the close frame once the
// connection is closing. A write that does not complete in time ends the connection.
// Closing goes before anything still queued: a client cut for being slow gets its 1013 as
// soon as the write under way completes, not after the backlog it could not take.
func (c *conn) write() {
	defer c.writers.Done()
	for {
		c.qmu.Lock()
		if c.closing {
			code, reason := c.code, c.reason
			c.queue = nil
			c.qmu.Unlock()
			c.ws.Close(code, reason)
			return
		}
		if len(c.queue) == 0 {
			c.queue, c.writing = nil, false // the emptied queue lets its array go
			c.qmu.Unlock()
			return
		}
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.qmu.Unlock()

		// The write's time limit is kept by the hub's watchWrites, not by a context: a
		// context that can end costs each write a timer and the library a registration
		// with it, per member per frame.
		c.writeSince.Store(c.s.sinceStart())
		err := c.ws.Write(context.Background(), websocket.MessageText, b)
		c.writeSince.Store(0)
		if err != nil {
			c.ws.CloseNow() // writing stays true: no writer starts again
			return
		}
		c.s.wsOut.Inc()
	}
}

// ping checks the peer every PingInterval: the reader answers pongs, and a peer that has not
// within the rest of the read deadline is gone. It runs on its timer's goroutine, alongside
// any writer.
func (c *conn) ping() {
	ctx, cancel := context.WithTimeout(c.ctx, ReadDeadline-PingInterval)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.ws.CloseNow()
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if !c.closing {
		c.pinger.Reset(PingInterval)
	}
}
