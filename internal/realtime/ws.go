package realtime

import (
	"context"
	"errors"
	"net/http"
	"sync"
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
	defer s.hub.unreserve(p.UserID)

	unlimitedDeadlines(w)
	// The Origin was checked above, against our own rules (the library's would allow
	// only patterns of hosts, and no "*").
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept has answered the bad handshake itself
	}
	ws.SetReadLimit(ReadLimit)

	// The request's context ends when this handler returns, not with the hijacked
	// connection; the connection gets its own, keeping the request's values (request ID,
	// principal).
	ctx, cancel := context.WithCancel(plaza.WithPrincipal(context.WithoutCancel(r.Context()), p))
	c := &conn{
		s: s, id: plaza.NewID(), p: p, ctx: ctx, cancel: cancel, ws: ws,
		ready: make(chan struct{}, 1), closing: make(chan struct{}),
		limiter: rate.NewLimiter(FrameRate, FrameBurst), rooms: map[string]bool{},
	}
	s.wg.Add(1)
	defer s.wg.Done()
	s.m.open.WithLabelValues("ws").Inc()
	defer s.m.open.WithLabelValues("ws").Dec()
	s.hub.add(c)
	c.serve()
	s.hub.remove(c)
	return nil
}

// conn is one WebSocket connection. Its reader runs on the handler's goroutine, its
// writer on another; everything else talks to it through enqueue and close, which never
// block.
type conn struct {
	s      *Server
	id     string
	p      plaza.Principal
	ctx    context.Context // the caller's; cancelled when the connection has ended
	cancel context.CancelFunc
	ws     *websocket.Conn

	// queue holds the frames for the writer, at most QueueSize. It is a slice that grows
	// when frames wait and is handed to the writer whole, rather than a channel of
	// QueueSize: an idle connection then holds no queue at all, which is most of what a
	// channel that size would cost it.
	qmu       sync.Mutex
	queue     [][]byte
	ready     chan struct{} // a token when queue is not empty
	closing   chan struct{} // closed once, by close
	closeOnce sync.Once
	code      websocket.StatusCode
	reason    string

	limiter *rate.Limiter // only the reader uses it
	refused int

	mu    sync.Mutex
	rooms map[string]bool
}

// serve runs the connection until either side closes it, then leaves its rooms.
func (c *conn) serve() {
	stop := context.AfterFunc(c.s.opts.Shutdown, func() { c.close(websocket.StatusGoingAway, "server shutting down") })
	defer stop()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()
	c.read()
	c.close(websocket.StatusNormalClosure, "")
	<-writerDone
	c.cancel()
	for _, room := range c.joined() {
		c.s.hub.leave(c, room)
	}
}

func (c *conn) joined() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for r := range c.rooms {
		out = append(out, r)
	}
	return out
}

// read handles client frames until the connection fails or closes. A frame over
// ReadLimit makes the library close with 1009.
func (c *conn) read() {
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		c.s.m.in.WithLabelValues("ws").Inc()
		if !c.limiter.Allow() {
			c.refused++
			if c.refused >= AbuseLimit {
				c.close(websocket.StatusPolicyViolation, "rate limit exceeded repeatedly")
				return
			}
			c.enqueue(errorFrameOf(&plaza.Error{Code: plaza.ERateLimited, Message: "slow down: at most 10 frames a second"}, ""))
			continue
		}
		c.refused = 0
		if typ != websocket.MessageText {
			c.enqueue(errorFrameOf(plaza.Errorf(plaza.EBadRequest, "frames are JSON text messages"), ""))
			continue
		}
		f, err := decodeFrame(b)
		if err != nil {
			c.enqueue(errorFrameOf(err, ""))
			continue
		}
		if err := c.handle(f); err != nil {
			c.fail(err, f)
		}
	}
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
	return c.rooms[room]
}

// enqueue hands a frame to the writer without waiting. A full queue means the client does
// not keep up: it is closed with 1013 (try again later) rather than let it hold anyone up,
// and it recovers what it missed by rejoining with since.
func (c *conn) enqueue(b []byte) {
	select {
	case <-c.closing:
		return
	default:
	}
	c.qmu.Lock()
	full := len(c.queue) >= QueueSize
	if !full {
		c.queue = append(c.queue, b)
	}
	c.qmu.Unlock()
	if full {
		c.s.m.dropped.WithLabelValues("ws").Inc()
		c.s.m.slowCuts.WithLabelValues("ws").Inc()
		c.close(websocket.StatusTryAgainLater, "too slow: the send queue is full")
		return
	}
	select {
	case c.ready <- struct{}{}:
	default: // the writer has a token already
	}
}

// next takes the oldest queued frame, if any. An emptied queue lets its array go.
func (c *conn) next() ([]byte, bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		return nil, false
	}
	b := c.queue[0]
	c.queue[0] = nil
	if c.queue = c.queue[1:]; len(c.queue) == 0 {
		c.queue = nil
	}
	return b, true
}

// close asks the writer to close the connection with code; only the first call counts.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.closing)
	})
}

// write sends queued frames and pings until the connection is closing, then sends the
// close frame. A write or ping that does not complete in time ends the connection. Closing
// goes before anything still queued: a client cut for being slow gets its 1013 as soon as
// the write under way completes, not after the backlog it could not take.
func (c *conn) write() {
	ping := time.NewTicker(PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.closing:
			c.ws.Close(c.code, c.reason)
			return
		default:
		}
		select {
		case <-c.ready:
			for {
				b, ok := c.next()
				if !ok {
					break
				}
				select {
				case <-c.closing:
					c.ws.Close(c.code, c.reason)
					return
				default:
				}
				ctx, cancel := context.WithTimeout(c.ctx, writeWait)
				err := c.ws.Write(ctx, websocket.MessageText, b)
				cancel()
				if err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						c.s.m.slowCuts.WithLabelValues("ws").Inc()
					}
					c.ws.CloseNow()
					return
				}
				c.s.m.out.WithLabelValues("ws").Inc()
			}
		case <-ping.C:
			// The reader answers pongs; a peer that has not within the rest of the read
			// deadline is gone.
			ctx, cancel := context.WithTimeout(c.ctx, ReadDeadline-PingInterval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.ws.CloseNow()
				return
			}
		case <-c.closing:
			c.ws.Close(c.code, c.reason)
			return
		}
	}
}
