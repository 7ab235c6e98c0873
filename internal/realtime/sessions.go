package realtime

import (
	"context"
	"sync"

	"plaza/internal/plaza"
)

// watched is a stream of another transport under this server's session checks.
type watched struct {
	ctx  context.Context
	end  func()
	once sync.Once
}

// WatchSession puts a stream of another transport (a GraphQL subscription socket) under
// the session checks of /ws and /api/events: at every heartbeat CheckSession is asked
// about ctx's caller, and once their session has ended (logged out, deleted) end is called,
// once, for the transport to close the stream its own way. stop takes the stream out of
// the checks; call it when the stream ends. Without CheckSession nothing is watched.
func (s *Server) WatchSession(ctx context.Context, end func()) (stop func()) {
	if s.opts.CheckSession == nil {
		return func() {}
	}
	w := &watched{ctx: ctx, end: end}
	h := s.hub
	h.mu.Lock()
	h.watched[w] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.watched, w)
		h.mu.Unlock()
	}
}

// checkWatched ends the watched streams whose caller's session has ended.
func (h *hub) checkWatched(check func(context.Context) error) {
	h.mu.Lock()
	ws := make([]*watched, 0, len(h.watched))
	for w := range h.watched {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		if plaza.ErrorCodeOf(check(w.ctx)) == plaza.EUnauthenticated {
			w.once.Do(w.end)
		}
	}
}
