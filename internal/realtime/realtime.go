// Package realtime is Plaza's streaming transport: chat rooms over WebSocket (GET /ws) and
// domain events over Server-Sent Events (GET /api/events), plus the one-time tickets a
// browser opens them with. Rules live in the chat service; this package authenticates,
// fans events out to connections, and protects the server from its clients: bounded send
// queues with slow consumers cut, read limits, per-connection rates, liveness pings, an
// Origin check, a cap on connections per user, and close 1001 on shutdown.
//
// Each instance subscribes once per room to the room's bus stream and encodes each event
// once for all its local members; the bus reads each stream once per instance. So a room
// costs one subscription per instance, whatever its member count.
package realtime

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/bus"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// Chat is what the WebSocket transport needs from the chat service (chat.Service).
type Chat interface {
	Join(ctx context.Context, room, conn, since string) (chat.Joined, error)
	Leave(ctx context.Context, room, conn string) error
	Send(ctx context.Context, room, text, clientID string) (chat.Message, error)
	Typing(ctx context.Context, room string) error
	Heartbeat(ctx context.Context, room, conn string) error
	Members(ctx context.Context, room string) ([]chat.Member, error)
	AnnouncePresence(ctx context.Context, room string) ([]chat.Member, error)
}

// Subscriber is what streams need from the bus (bus.Bus).
type Subscriber interface {
	Subscribe(ctx context.Context, stream, after string) (bus.Subscription, error)
}

// Limits and timings. The issue fixes most of them.
const (
	ReadLimit       = 16 << 10         // bytes of one client frame; over it the connection closes with 1009
	FrameRate       = 10               // client frames per second per connection...
	FrameBurst      = 20               // ...with this burst
	AbuseLimit      = 20               // refused frames in a row that close the connection with 1008
	PingInterval    = 30 * time.Second // a ping this often...
	ReadDeadline    = 60 * time.Second // ...and a peer silent this long is gone
	QueueSize       = 256              // frames waiting for one connection; full → close 1013
	MaxRooms        = 50               // rooms one connection may be in
	writeWait       = 10 * time.Second // one write to a client; longer and it counts as slow
	SSEHeartbeat    = 15 * time.Second
	SSERetry        = 3 * time.Second
	DefaultMaxConns = 20 // connections per user per instance
)

// Options configure New. Chat, Bus and Tickets are required.
type Options struct {
	Chat Chat
	Bus  Subscriber
	// Tickets is the shared cache tickets live in (the security-state cache).
	Tickets Cache
	// CheckSession, when set, is asked about the caller of every WebSocket connection,
	// signed-in SSE stream and stream watched with WatchSession each presence heartbeat; an
	// EUnauthenticated answer (the user was deleted, the token revoked) ends the connection
	// with 1008, and the stream.
	CheckSession func(ctx context.Context) error
	// Origins are the browser origins allowed besides the server's own host
	// (PLAZA_CORS_ORIGINS; "*" allows any).
	Origins []string
	// MaxConnsPerUser caps one user's WebSocket connections on this instance (default
	// DefaultMaxConns).
	MaxConnsPerUser int
	// PresenceTTL is the presence entries' lifetime; heartbeats run every third of it
	// (default chat.DefaultPresenceTTL).
	PresenceTTL time.Duration
	// Shutdown ends every stream when it is done: WebSockets close with 1001.
	Shutdown   context.Context
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	writeWait time.Duration // tests shorten it; default writeWait
}

// Server serves the real-time endpoints. Build it with New; it runs until Shutdown is done.
type Server struct {
	opts    Options
	log     *slog.Logger
	m       metrics
	tickets tickets
	hub     *hub
	feeds   feeds
	wg      sync.WaitGroup // open connections and streams
	start   time.Time      // for sinceStart

	// Counters of m looked up once: they count every frame or event, and a lookup by
	// label costs more than the count.
	sseOut, wsOut, wsIn prometheus.Counter

	// wgMu orders every first Add of wg before Wait (sync.WaitGroup forbids them
	// concurrent, which a connection arriving during shutdown would make them); once
	// waiting, no connection or stream starts.
	wgMu    sync.Mutex
	waiting bool
}

// New builds the server and starts its heartbeat loop.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConnsPerUser <= 0 {
		opts.MaxConnsPerUser = DefaultMaxConns
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = chat.DefaultPresenceTTL
	}
	if opts.Shutdown == nil {
		opts.Shutdown = context.Background()
	}
	if opts.writeWait <= 0 {
		opts.writeWait = writeWait
	}
	s := &Server{opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer), tickets: tickets{cache: opts.Tickets}, start: time.Now()}
	s.hub = newHub(s)
	s.sseOut = s.m.out.WithLabelValues("sse")
	s.wsOut, s.wsIn = s.m.out.WithLabelValues("ws"), s.m.in.WithLabelValues("ws")
	s.feeds = feeds{s: s, byStream: map[int]*feed{}, all: map[*sseClient]struct{}{}}
	go s.hub.heartbeats(opts.Shutdown, opts.PresenceTTL/3)
	go s.hub.watchWrites(opts.writeWait)
	context.AfterFunc(opts.Shutdown, s.hub.closeAll)
	return s
}

// IssueTicket returns a one-time ticket for the signed-in caller and how long it is valid.
func (s *Server) IssueTicket(ctx context.Context) (string, time.Duration, error) {
	t, err := s.tickets.issue(ctx)
	return t.Ticket, TicketTTL, err
}

// sinceStart is the time since New on the monotonic clock, never 0: what a write's start
// is recorded as.
func (s *Server) sinceStart() int64 { return int64(time.Since(s.start)) | 1 }

// track counts a connection or stream starting, for Wait; false once Wait has begun, when
// none may start.
func (s *Server) track() bool {
	s.wgMu.Lock()
	defer s.wgMu.Unlock()
	if s.waiting {
		return false
	}
	s.wg.Add(1)
	return true
}

// Wait blocks until every connection and stream has ended, or ctx is done. Connections
// and streams arriving after it began are refused.
func (s *Server) Wait(ctx context.Context) error {
	s.wgMu.Lock()
	s.waiting = true
	s.wgMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// principal is the caller of a stream request: from the Authorization header (the
// middleware put it in the context) or from a ticket in the query.
func (s *Server) principal(r *http.Request) (plaza.Principal, bool, error) {
	if p, ok := plaza.PrincipalFrom(r.Context()); ok {
		return p, true, nil
	}
	t := r.URL.Query().Get("ticket")
	if t == "" {
		return plaza.Principal{}, false, nil
	}
	p, err := s.tickets.redeem(r.Context(), t)
	return p, err == nil, err
}

// checkOrigin allows requests without an Origin (not a browser), from the server's own
// host, and from the configured origins. Anything else is refused before the upgrade: a
// page elsewhere must not ride a user's credentials into our WebSocket.
func (s *Server) checkOrigin(r *http.Request) error { return CheckOrigin(r, s.opts.Origins) }

// CheckOrigin is the Origin rule of every WebSocket Plaza serves (/ws, /graphql): no Origin
// (not a browser), the server's own host, or one of origins ("*" for any); else EForbidden.
func CheckOrigin(r *http.Request, origins []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	if slices.Contains(origins, "*") || slices.Contains(origins, strings.TrimSuffix(origin, "/")) {
		return nil
	}
	return plaza.Errorf(plaza.EForbidden, "origin %q may not open streams here", origin)
}

// unlimitedDeadlines lifts the server's read and write timeouts off a stream's connection:
// they bound ordinary requests, and a stream sets its own per write.
func unlimitedDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
