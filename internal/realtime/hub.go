package realtime

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"plaza/internal/bus"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// hub holds this instance's connections and the rooms they are in. A room has one bus
// subscription here, however many local members it has; its events are encoded once and
// handed to each member's queue without waiting.
type hub struct {
	s *Server

	mu    sync.Mutex // guards the maps below; taken before a room's mu, never after
	rooms map[string]*room
	users map[string]int // connections (and reservations) per user
	conns map[*conn]struct{}
	// watched are other transports' streams under the session checks (WatchSession).
	watched map[*watched]struct{}
}

type room struct {
	name string
	sub  bus.Subscription

	mu      sync.Mutex
	members map[*conn]*member
	seen    []chat.Member // the members in the last presence event: what everyone was told
}

// member is a connection's place in a room. While it joins, live frames are held back so
// that they follow its joined frame, minus the messages its history already holds.
type member struct {
	joining bool
	held    []heldFrame
}

type heldFrame struct {
	frame []byte
	msgID string
}

// maxHeld bounds the frames held for a joining member; a room that busy while the
// history loads makes the join fail with 1013, and the client retries.
const maxHeld = QueueSize

func newHub(s *Server) *hub {
	return &hub{s: s, rooms: map[string]*room{}, users: map[string]int{}, conns: map[*conn]struct{}{}, watched: map[*watched]struct{}{}}
}

// reserve counts a connection of user, refusing one past the cap.
func (h *hub) reserve(user string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[user] >= h.s.opts.MaxConnsPerUser {
		return plaza.Errorf(plaza.ERateLimited, "too many open connections for this user (at most %d); close one first", h.s.opts.MaxConnsPerUser)
	}
	h.users[user]++
	return nil
}

func (h *hub) unreserve(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[user]--; h.users[user] <= 0 {
		delete(h.users, user)
	}
}

func (h *hub) add(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c] = struct{}{}
}

func (h *hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// goingAway is the reason connections close with 1001.
const goingAway = "server shutting down"

// closeAll closes every connection with 1001: the server is shutting down.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.close(websocket.StatusGoingAway, goingAway)
	}
}

// join adds c to room: it subscribes the room (first local member) before the chat
// service reads the history, so nothing sent meanwhile is missed, then sends the joined
// frame followed by whatever arrived while joining and is not in the history.
func (h *hub) join(c *conn, name, since string) error {
	c.mu.Lock()
	switch {
	case slices.Contains(c.rooms, name):
		c.mu.Unlock()
		return plaza.Errorf(plaza.EConflict, "already in room %q", name)
	case len(c.rooms) >= MaxRooms:
		c.mu.Unlock()
		return plaza.Errorf(plaza.EInvalid, "a connection may be in at most %d rooms", MaxRooms)
	}
	c.rooms = append(c.rooms, name)
	c.mu.Unlock()

	r, m, err := h.enter(c, name)
	if err != nil {
		h.forget(c, name)
		return err
	}
	j, err := h.s.opts.Chat.Join(c.ctx, name, c.id, since)
	if err != nil {
		h.exit(c, r)
		h.forget(c, name)
		return err
	}
	inHistory := make(map[string]bool, len(j.History))
	for _, msg := range j.History {
		inHistory[msg.ID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.enqueue(mustEncode(joinedFrame{Type: "joined", Joined: j}))
	for _, f := range m.held {
		if f.msgID == "" || !inHistory[f.msgID] {
			c.enqueue(f.frame)
		}
	}
	m.joining, m.held = false, nil
	return nil
}

func (h *hub) forget(c *conn, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rooms = slices.DeleteFunc(c.rooms, func(r string) bool { return r == name })
}

// enter makes c a joining member of room name, subscribing the room on first use.
func (h *hub) enter(c *conn, name string) (*room, *member, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		sub, err := h.s.opts.Bus.Subscribe(context.WithoutCancel(c.ctx), chat.Stream(name), "")
		if err != nil {
			return nil, nil, err
		}
		r = &room{name: name, sub: sub, members: map[*conn]*member{}}
		h.rooms[name] = r
		go h.forward(r)
	}
	m := &member{joining: true}
	r.mu.Lock()
	r.members[c] = m
	r.mu.Unlock()
	return r, m, nil
}

// exit removes c from r and drops the room's subscription with its last member.
func (h *hub) exit(c *conn, r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.mu.Lock()
	delete(r.members, c)
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty && h.rooms[r.name] == r {
		delete(h.rooms, r.name)
		r.sub.Close()
	}
}

// leave takes c out of room and tells the room who is left.
func (h *hub) leave(c *conn, name string) {
	h.forget(c, name)
	h.mu.Lock()
	r := h.rooms[name]
	h.mu.Unlock()
	if r != nil {
		h.exit(c, r)
	}
	// The connection may be gone already: presence is updated in a context of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
	defer cancel()
	if err := h.s.opts.Chat.Leave(ctx, name, c.id); err != nil {
		h.s.log.WarnContext(ctx, "realtime: leaving a room failed; the entry expires with its TTL", "room", name, "err", err)
	}
}

// forward fans the room's events out to its local members until the subscription ends.
// When it ends while members remain (this instance fell behind, or the bus closed), they
// are closed with 1013: they rejoin with since and recover what they missed.
func (h *hub) forward(r *room) {
	for ev := range r.sub.Events() {
		f, msgID, typist, ok := roomFrame(ev)
		if !ok {
			continue
		}
		r.mu.Lock()
		if ev.Type == chat.EventPresence {
			var p chat.Presence
			if json.Unmarshal(ev.Data, &p) == nil {
				r.seen = p.Members
			}
		}
		for c, m := range r.members {
			switch {
			case typist != "" && typist == c.p.UserID:
				// Nobody needs to be told they are typing.
			case m.joining && len(m.held) >= maxHeld:
				h.s.m.slowCuts.WithLabelValues("ws").Inc()
				c.close(websocket.StatusTryAgainLater, "the room is too busy to join now")
			case m.joining:
				m.held = append(m.held, heldFrame{frame: f, msgID: msgID})
			default:
				c.enqueue(f)
			}
		}
		r.mu.Unlock()
	}
	h.mu.Lock()
	current := h.rooms[r.name] == r
	if current {
		delete(h.rooms, r.name)
	}
	h.mu.Unlock()
	if !current {
		return // released with its last member
	}
	h.s.log.Warn("realtime: room subscription ended; its members reconnect", "room", r.name, "err", r.sub.Err())
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.members {
		c.close(websocket.StatusTryAgainLater, "the room's stream was interrupted; rejoin with since")
	}
}

// heartbeats keeps this instance's members present, tells rooms when members of another
// instance expired, and ends the connections, SSE streams and watched streams of callers
// whose session ended, every interval until ctx is done.
func (h *hub) heartbeats(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.beat(ctx)
		}
	}
}

func (h *hub) beat(ctx context.Context) {
	h.mu.Lock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()

	check := h.s.opts.CheckSession
	if check != nil {
		for _, c := range h.s.feeds.clients() {
			if c.user != "" && plaza.ErrorCodeOf(check(c.ctx)) == plaza.EUnauthenticated {
				c.end()
			}
		}
		h.checkWatched(check)
	}
	chatSvc := h.s.opts.Chat
	for _, c := range conns {
		if check != nil && plaza.ErrorCodeOf(check(c.ctx)) == plaza.EUnauthenticated {
			c.close(websocket.StatusPolicyViolation, "the session has ended")
			continue
		}
		for _, name := range c.joined() {
			if err := chatSvc.Heartbeat(c.ctx, name, c.id); err != nil && c.ctx.Err() == nil {
				h.s.log.WarnContext(ctx, "realtime: presence heartbeat failed", "room", name, "err", err)
			}
		}
	}
	for _, r := range rooms {
		now, err := chatSvc.Members(ctx, r.name)
		if err != nil {
			continue
		}
		r.mu.Lock()
		same := slices.Equal(now, r.seen)
		r.mu.Unlock()
		if !same {
			if _, err := chatSvc.AnnouncePresence(ctx, r.name); err != nil {
				h.s.log.WarnContext(ctx, "realtime: announcing presence failed", "room", r.name, "err", err)
			}
		}
	}
}

// watchWrites ends the connections whose write has been under way for limit: the client
// does not read, and the writer would otherwise wait for it forever (writes carry no
// deadline of their own, see conn.write). It looks every tenth of limit, so a write is cut
// after limit and before 1.1 limit, and stops once the server has shut down and every
// connection has ended.
func (h *hub) watchWrites(limit time.Duration) {
	t := time.NewTicker(limit / 10)
	defer t.Stop()
	var stalled []*conn
	for range t.C {
		now := h.s.sinceStart()
		h.mu.Lock()
		for c := range h.conns {
			if since := c.writeSince.Load(); since != 0 && now-since >= int64(limit) && c.writeSince.CompareAndSwap(since, 0) {
				stalled = append(stalled, c)
			}
		}
		over := len(h.conns) == 0 && h.s.opts.Shutdown.Err() != nil
		h.mu.Unlock()
		for i, c := range stalled {
			h.s.m.slowCuts.WithLabelValues("ws").Inc()
			c.ws.CloseNow() // the write fails, and its writer ends the connection
			stalled[i] = nil
		}
		stalled = stalled[:0]
		if over {
			return
		}
	}
}
