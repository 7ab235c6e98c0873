package chat

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"plaza/internal/plaza"
)

// Store is what the service needs from the database. store.Chat implements it; its
// contract test runs on SQLite and PostgreSQL.
type Store interface {
	// CreateRoom inserts r; EConflict when the slug is taken.
	CreateRoom(ctx context.Context, r Room) error
	// Room returns the room or ENotFound.
	Room(ctx context.Context, slug string) (Room, error)
	// Rooms returns every room by slug.
	Rooms(ctx context.Context) ([]Room, error)
	// InsertMessage stores m with the events that announce it (written in the same
	// transaction, published after the commit: a stored message is always delivered);
	// ENotFound when its room does not exist.
	InsertMessage(ctx context.Context, m Message, events ...plaza.Outgoing) error
	// Message returns message id of room, or ENotFound.
	Message(ctx context.Context, room, id string) (Message, error)
	// DeleteMessage removes message id of room with the events that announce it, or
	// answers ENotFound.
	DeleteMessage(ctx context.Context, room, id string, events ...plaza.Outgoing) error
	// MessagesBefore returns up to limit messages of room with IDs before before ("" for
	// the newest), newest first.
	MessagesBefore(ctx context.Context, room, before string, limit int) ([]Message, error)
	// MessagesAfter returns up to limit messages of room with IDs after after, oldest
	// first.
	MessagesAfter(ctx context.Context, room, after string, limit int) ([]Message, error)
}

// Publisher publishes domain events (bus.Bus implements it).
type Publisher interface {
	Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error)
}

// Options configure NewService. Store, Presence, Bus and CallerName are required.
type Options struct {
	Store    Store
	Presence PresenceStore
	Bus      Publisher
	// CallerName returns the display name of the signed-in caller in ctx (the users
	// service's Me does, from its cache). Messages carry the name it had when sent.
	CallerName func(ctx context.Context) (string, error)
	Logger     *slog.Logger
	Now        func() time.Time // default time.Now
}

// Service is the chat service. It is safe for concurrent use.
type Service struct {
	store    Store
	presence PresenceStore
	bus      Publisher
	name     func(ctx context.Context) (string, error)
	log      *slog.Logger
	now      func() time.Time

	// rooms remembers slugs known to exist: rooms are never deleted, so a positive answer
	// never goes stale, and typing and messages cost no room lookup.
	rooms sync.Map

	amu        sync.Mutex
	announcing map[string]*announcement // by room
}

// announcement is when a room's presence was last announced from here, and whether a
// later announcement is due.
type announcement struct {
	last    time.Time
	pending bool
}

// PresenceInterval bounds how often one instance announces a room's presence after joins
// and leaves: the first change is announced at once, those that follow within the interval
// together at its end. Every member receives every announcement, so without it a thousand
// members connecting after a deploy would be a million frames.
const PresenceInterval = time.Second

// NewService builds the service.
func NewService(opts Options) *Service {
	s := &Service{store: opts.Store, presence: opts.Presence, bus: opts.Bus, name: opts.CallerName, log: opts.Logger, now: opts.Now,
		announcing: map[string]*announcement{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// caller returns the signed-in caller: chat is for signed-in users only.
func caller(ctx context.Context) (plaza.Principal, error) {
	p, ok := plaza.PrincipalFrom(ctx)
	if !ok {
		return p, plaza.Errorf(plaza.EUnauthenticated, "sign in first: chat needs a Bearer access token or a ticket")
	}
	return p, nil
}

// CreateRoom creates a room; any signed-in user may.
func (s *Service) CreateRoom(ctx context.Context, slug, name string) (Room, error) {
	p, err := caller(ctx)
	if err != nil {
		return Room{}, err
	}
	r := Room{Slug: slug, Name: strings.TrimSpace(name), CreatedBy: p.UserID, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := r.Validate(); err != nil {
		return Room{}, err
	}
	if err := s.store.CreateRoom(ctx, r); err != nil {
		if plaza.ErrorCodeOf(err) == plaza.EConflict {
			return Room{}, plaza.Errorf(plaza.EConflict, "a room with slug %q exists already", slug)
		}
		return Room{}, err
	}
	s.rooms.Store(slug, true)
	return r, nil
}

// Rooms lists every room with its live member count across instances. A presence outage
// shows as counts of 0 rather than failing the list.
func (s *Service) Rooms(ctx context.Context) ([]Room, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	rooms, err := s.store.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	for i := range rooms {
		ms, err := s.presence.Members(ctx, rooms[i].Slug)
		if err != nil {
			s.log.WarnContext(ctx, "chat: member count unavailable", "room", rooms[i].Slug, "err", err)
			continue
		}
		rooms[i].Members = len(ms)
	}
	return rooms, nil
}

// room checks that slug names a room.
func (s *Service) room(ctx context.Context, slug string) error {
	if _, ok := s.rooms.Load(slug); ok {
		return nil
	}
	if _, err := s.store.Room(ctx, slug); err != nil {
		if plaza.ErrorCodeOf(err) == plaza.ENotFound {
			return plaza.Errorf(plaza.ENotFound, "no room %q", slug)
		}
		return err
	}
	s.rooms.Store(slug, true)
	return nil
}

// History pages a room's persisted messages, newest first: limit (1–100, default 20)
// messages before the cursor ("" for the newest). next is "" on the last page.
func (s *Service) History(ctx context.Context, room string, req plaza.PageRequest) (plaza.Page[Message], error) {
	if _, err := caller(ctx); err != nil {
		return plaza.Page[Message]{}, err
	}
	if err := s.room(ctx, room); err != nil {
		return plaza.Page[Message]{}, err
	}
	req, err := req.Normalize()
	if err != nil {
		return plaza.Page[Message]{}, err
	}
	var c historyCursor
	if req.Cursor != "" {
		if err := plaza.DecodeCursor(req.Cursor, &c); err != nil {
			return plaza.Page[Message]{}, err
		}
		if !plaza.ValidID(c.ID) {
			return plaza.Page[Message]{}, plaza.BadParam("before", "before is not a cursor this server issued")
		}
	}
	items, err := s.store.MessagesBefore(ctx, room, c.ID, req.Limit+1)
	if err != nil {
		return plaza.Page[Message]{}, err
	}
	return plaza.PageOf(items, req.Limit, HistoryCursor), nil
}

// HistoryCursor is the history cursor that continues before m (with older messages): every
// message has one, so a transport can hand one out per item (GraphQL edges).
func HistoryCursor(m Message) string { return plaza.EncodeCursor(historyCursor{ID: m.ID}) }

// historyCursor is what a history cursor holds: the oldest message ID of the page.
type historyCursor struct {
	ID string `json:"id"`
}

// Send stores a message from the caller, then publishes it on the room's stream; its
// echo to the sender is the acknowledgement. When publishing fails the message is stored
// but nobody was told: the error says so, and members see it when they next recover.
func (s *Service) Send(ctx context.Context, room, text, clientID string) (Message, error) {
	p, err := caller(ctx)
	if err != nil {
		return Message{}, err
	}
	if err := validateText(text, clientID); err != nil {
		return Message{}, err
	}
	if err := s.room(ctx, room); err != nil {
		return Message{}, err
	}
	name, err := s.name(ctx)
	if err != nil {
		return Message{}, err
	}
	m := Message{ID: plaza.NewID(), Room: room, UserID: p.UserID, UserName: name, Text: text,
		SentAt: s.now().UTC().Truncate(time.Microsecond), ClientID: clientID}
	ev, err := s.event(ctx, room, EventMessage, m)
	if err != nil {
		return Message{}, err
	}
	if err := s.store.InsertMessage(ctx, m, ev); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DeleteMessage removes a message everywhere; only its author or an admin may.
func (s *Service) DeleteMessage(ctx context.Context, room, id string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	m, err := s.store.Message(ctx, room, id)
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return plaza.Errorf(plaza.ENotFound, "no message %q in room %q", id, room)
	}
	if err != nil {
		return err
	}
	if m.UserID != p.UserID && !p.IsAdmin() {
		return plaza.Errorf(plaza.EForbidden, "only the author of a message or an admin may delete it")
	}
	ev, err := s.event(ctx, room, EventMessageDeleted, Deleted{Room: room, ID: id})
	if err != nil {
		return err
	}
	return s.store.DeleteMessage(ctx, room, id, ev)
}

// Typing tells the room's members that the caller is typing.
func (s *Service) Typing(ctx context.Context, room string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.room(ctx, room); err != nil {
		return err
	}
	name, err := s.name(ctx)
	if err != nil {
		return err
	}
	return s.publish(ctx, room, EventTyping, Typing{Room: room, UserID: p.UserID, UserName: name})
}

// Joined is what a connection learns when it joins a room.
type Joined struct {
	Room    string    `json:"room"`
	History []Message `json:"history"`
	Members []Member  `json:"members"`
	// Recovered is true when History is exactly the messages after the since the client
	// gave, false when it is the latest HistorySize (no since, or one too old to bridge).
	Recovered bool `json:"recovered"`
}

// Join records connection conn of the caller in room and returns the history it needs:
// with since (a message ID), exactly the messages after it when they can be bridged,
// otherwise the latest HistorySize. The transport subscribes to the room's stream before
// calling Join, so a message sent meanwhile arrives at least once (the transport drops
// what History already holds).
func (s *Service) Join(ctx context.Context, room, conn, since string) (Joined, error) {
	p, err := caller(ctx)
	if err != nil {
		return Joined{}, err
	}
	if err := s.room(ctx, room); err != nil {
		return Joined{}, err
	}
	name, err := s.name(ctx)
	if err != nil {
		return Joined{}, err
	}
	j := Joined{Room: room, History: []Message{}}
	if since != "" {
		j.History, j.Recovered, err = s.recover(ctx, room, since)
		if err != nil {
			return Joined{}, err
		}
	}
	if !j.Recovered {
		latest, err := s.store.MessagesBefore(ctx, room, "", HistorySize)
		if err != nil {
			return Joined{}, err
		}
		slices.Reverse(latest) // oldest first, like a recovery
		j.History = latest
	}
	if err := s.presence.Add(ctx, room, conn, Member{ID: p.UserID, Name: name}); err != nil {
		return Joined{}, err
	}
	if j.Members, err = s.presence.Members(ctx, room); err != nil {
		return Joined{}, err
	}
	if err := s.presenceChanged(ctx, room); err != nil {
		return Joined{}, err
	}
	return j, nil
}

// presenceChanged announces room's presence now, or at the end of the PresenceInterval
// when it was announced within it (once, however many changes came meanwhile). A late
// announcement that fails is logged: the members' next heartbeat announces it again.
func (s *Service) presenceChanged(ctx context.Context, room string) error {
	s.amu.Lock()
	a := s.announcing[room]
	if a == nil {
		a = &announcement{}
		s.announcing[room] = a
	}
	if a.pending {
		s.amu.Unlock()
		return nil
	}
	now := time.Now() // the timer's clock, not s.now: the interval is real time
	wait := a.last.Add(PresenceInterval).Sub(now)
	if wait <= 0 {
		a.last = now
		s.amu.Unlock()
		_, err := s.AnnouncePresence(ctx, room)
		return err
	}
	a.pending = true
	s.amu.Unlock()
	later := context.WithoutCancel(ctx)
	time.AfterFunc(wait, func() {
		s.amu.Lock()
		a.pending, a.last = false, time.Now()
		s.amu.Unlock()
		ctx, cancel := context.WithTimeout(later, 5*time.Second)
		defer cancel()
		if _, err := s.AnnouncePresence(ctx, room); err != nil {
			s.log.WarnContext(ctx, "chat: announcing presence failed; the next heartbeat will", "room", room, "err", err)
		}
	})
	return nil
}

// recover returns the messages after since when since is a message of the room still kept
// and no more than MaxRecover followed it.
func (s *Service) recover(ctx context.Context, room, since string) ([]Message, bool, error) {
	if _, err := s.store.Message(ctx, room, since); err != nil {
		if plaza.ErrorCodeOf(err) == plaza.ENotFound {
			return nil, false, nil
		}
		return nil, false, err
	}
	missed, err := s.store.MessagesAfter(ctx, room, since, MaxRecover+1)
	if err != nil || len(missed) > MaxRecover {
		return nil, false, err
	}
	if missed == nil {
		missed = []Message{}
	}
	return missed, true, nil
}

// Leave forgets connection conn in room and tells the members who is left.
func (s *Service) Leave(ctx context.Context, room, conn string) error {
	if err := s.presence.Remove(ctx, room, conn); err != nil {
		return err
	}
	return s.presenceChanged(ctx, room)
}

// Heartbeat keeps connection conn of the caller present in room; the transport calls it
// for every membership well within the presence TTL.
func (s *Service) Heartbeat(ctx context.Context, room, conn string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	name, err := s.name(ctx)
	if err != nil {
		return err
	}
	return s.presence.Add(ctx, room, conn, Member{ID: p.UserID, Name: name})
}

// Members returns who is in room now, across instances.
func (s *Service) Members(ctx context.Context, room string) ([]Member, error) {
	return s.presence.Members(ctx, room)
}

// AnnouncePresence publishes the room's current members and returns them. Joins and
// leaves call it; so does each instance when the members it last saw differ from the
// current ones, which is how entries of a dead instance, expiring unannounced, reach the
// others.
func (s *Service) AnnouncePresence(ctx context.Context, room string) ([]Member, error) {
	ms, err := s.presence.Members(ctx, room)
	if err != nil {
		return nil, err
	}
	if err := s.publish(ctx, room, EventPresence, Presence{Room: room, Members: ms}); err != nil {
		return nil, err
	}
	return ms, nil
}

func (s *Service) publish(ctx context.Context, room, typ string, data any) error {
	ev, err := s.event(ctx, room, typ, data)
	if err != nil {
		return err
	}
	_, err = s.bus.Publish(ctx, ev.Stream, ev.Event)
	return err
}

// event is a room event by the caller. Stored changes (messages, deletions) hand it to the
// store's write (the outbox); presence and typing, which change nothing stored, publish it.
func (s *Service) event(ctx context.Context, room, typ string, data any) (plaza.Outgoing, error) {
	p, _ := plaza.PrincipalFrom(ctx)
	ev, err := plaza.NewEvent(typ, p.UserID, data, s.now())
	if err != nil {
		return plaza.Outgoing{}, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	return plaza.Outgoing{Stream: Stream(room), Event: ev}, nil
}
