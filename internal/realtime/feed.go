package realtime

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"plaza/internal/bus"
	"plaza/internal/plaza"
)

// A feed is one bus stream followed once by this instance for all its SSE clients, like a
// room is for its WebSocket members: each event is encoded once and offered to every client
// that wants it, without waiting. A client's queue holds a few pointers to shared events
// rather than a bus subscription of its own (whose buffer of events alone would be larger
// than everything else a stream costs), and a client whose queue is full is cut: it resumes
// from its last event ID.
type feed struct {
	stream int // index in sseStreams
	sub    bus.Subscription

	mu      sync.Mutex
	clients map[*sseClient]struct{}
}

// feedEvent is an event as every client writes it.
type feedEvent struct {
	stream int
	id     string
	typ    string
	about  string // for user.* events, the user they are about: only that user sees them
	tail   []byte // what follows the ID in every stream: type and data (eventTail)
}

// sseQueue is how many events may wait for one SSE client. Events come at most as fast as
// products change; a client that lets this many pile up is not reading.
const sseQueue = 128

// sseClient is one SSE stream's place in the feeds.
type sseClient struct {
	ctx   context.Context // the caller's, for session checks
	user  string          // "" for the anonymous
	types typeFilter
	queue chan *feedEvent

	endOnce sync.Once
	ended   chan struct{} // closed by end: the queue filled up, the session or the feed ended
}

func newSSEClient(ctx context.Context, user string, types typeFilter) *sseClient {
	return &sseClient{ctx: ctx, user: user, types: types, queue: make(chan *feedEvent, sseQueue), ended: make(chan struct{})}
}

// end ends the client's stream and reports whether this call did.
func (c *sseClient) end() bool {
	first := false
	c.endOnce.Do(func() {
		first = true
		close(c.ended)
	})
	return first
}

// wants reports whether the client writes an event of type typ about user about from
// stream i.
func (c *sseClient) wants(i int, typ, about string) bool {
	st := sseStreams[i]
	return c.types.match(typ) && strings.HasPrefix(typ, st.prefix) && (!st.signedIn || about == c.user)
}

// feeds are this instance's feeds, one per stream with clients.
type feeds struct {
	s *Server

	mu       sync.Mutex // taken before a feed's mu, never after
	byStream map[int]*feed
	all      map[*sseClient]struct{} // every client, for session checks
}

// join adds c to stream i's feed, subscribing the stream on first use.
func (fs *feeds) join(c *sseClient, i int) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.byStream[i]
	if f == nil {
		sub, err := fs.s.opts.Bus.Subscribe(fs.s.opts.Shutdown, sseStreams[i].name, "")
		if err != nil {
			return err
		}
		f = &feed{stream: i, sub: sub, clients: map[*sseClient]struct{}{}}
		fs.byStream[i] = f
		go fs.forward(f)
	}
	f.mu.Lock()
	f.clients[c] = struct{}{}
	f.mu.Unlock()
	fs.all[c] = struct{}{}
	return nil
}

// leave takes c out of every feed, dropping a feed's subscription with its last client.
func (fs *feeds) leave(c *sseClient) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.all, c)
	for i, f := range fs.byStream {
		f.mu.Lock()
		delete(f.clients, c)
		empty := len(f.clients) == 0
		f.mu.Unlock()
		if empty {
			delete(fs.byStream, i)
			f.sub.Close()
		}
	}
}

// clients returns every client, for the session checks.
func (fs *feeds) clients() []*sseClient {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]*sseClient, 0, len(fs.all))
	for c := range fs.all {
		out = append(out, c)
	}
	return out
}

// forward hands the feed's events to its clients until the subscription ends; then the
// clients left end too, and resume from their last ID on a new feed.
func (fs *feeds) forward(f *feed) {
	for ev := range f.sub.Events() {
		data, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		fe := &feedEvent{stream: f.stream, id: ev.ID, typ: ev.Type, tail: eventTail(ev.Type, data)}
		if sseStreams[f.stream].signedIn {
			fe.about = about(ev)
		}
		f.mu.Lock()
		for c := range f.clients {
			if !c.wants(f.stream, fe.typ, fe.about) {
				continue
			}
			select {
			case c.queue <- fe:
			default:
				fs.s.m.dropped.WithLabelValues("sse").Inc()
				if c.end() {
					fs.s.m.slowCuts.WithLabelValues("sse").Inc()
				}
			}
		}
		f.mu.Unlock()
	}
	fs.mu.Lock()
	if fs.byStream[f.stream] == f {
		delete(fs.byStream, f.stream)
	}
	fs.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.clients {
		c.end()
	}
}

// about returns the ID of the user a user event is about.
func about(ev plaza.Event) string {
	var d struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	return d.ID
}

// later reports whether event ID a comes after b in their stream ("<ms>-<seq>", as the bus
// makes them). An ID that does not parse is never later: the bus made every ID compared
// here, and a client's malformed one was refused by the bus before.
func later(a, b string) bool {
	am, as, ok1 := splitID(a)
	bm, bs, ok2 := splitID(b)
	if !ok1 || !ok2 {
		return false
	}
	return am > bm || am == bm && as > bs
}

func splitID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, found && err1 == nil && err2 == nil
}
