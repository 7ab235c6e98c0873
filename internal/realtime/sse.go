package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"plaza/internal/bus"
	"plaza/internal/plaza"
)

// sseStream is one bus stream an SSE client may follow, and who may see its events.
type sseStream struct {
	name   string // bus stream
	prefix string // event types on it
	// signedIn streams carry events about users: only signed-in callers subscribe, and
	// each sees only the events about themself.
	signedIn bool
}

// sseStreams are in the order their positions take in an event ID.
var sseStreams = []sseStream{
	{name: plaza.StreamCatalog, prefix: "product."},
	{name: plaza.StreamUsers, prefix: "user.", signedIn: true},
}

// An SSE event ID holds the position of every stream, so one Last-Event-ID resumes all of
// them: "<catalog position>~<users position>".
const idSep = "~"

// ServeEvents serves GET /api/events: public product.* events to anyone and, to a signed-in
// caller (Bearer header or ticket), their own user.* events; ?types= narrows them. A
// Last-Event-ID header (or last_event_id query) resumes after that event from the
// retained history; one older than the history gets an "event: reset" first. Errors are
// returned before the stream starts, for the transport to answer.
//
// Live events come from the instance's feeds. A resuming client also reads the history
// through a bus subscription of its own until the feed's first event shows it has caught
// up, then drops it: that subscription's buffer is paid only while replaying.
func (s *Server) ServeEvents(w http.ResponseWriter, r *http.Request) error {
	p, signedIn, err := s.principal(r)
	if err != nil {
		return err
	}
	types, err := parseTypes(r.URL.Query().Get("types"))
	if err != nil {
		return err
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	// Without a position a stream starts now: a position rather than "" so the first ID
	// sent can already name it, and a client that drops before any event resumes without
	// a gap. (With Redis this trusts the instance's clock to agree with Redis's.)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10) + "-0"
	// last is, per stream, the position events must come after: the client's, then that
	// of the last event written. "" (a new stream) takes whatever the feed brings.
	last := make([]string, len(sseStreams))
	if lastID != "" {
		parts := strings.Split(lastID, idSep)
		if len(parts) != len(sseStreams) {
			return plaza.Errorf(plaza.EBadRequest, "Last-Event-ID %q is not an ID this server sent", lastID)
		}
		copy(last, parts)
	}

	// The stream may outlive this handler (on HTTP/1.1, see below): its context keeps the
	// request's values, not its end.
	ctx := context.WithoutCancel(r.Context())
	user := ""
	if signedIn {
		user = p.UserID
	}
	client := newSSEClient(plaza.WithPrincipal(ctx, p), user, types)
	st := &eventStream{s: s, client: client, now: now, last: last,
		followed: make([]bool, len(sseStreams)), replay: make([]bus.Subscription, len(sseStreams))}
	started := false
	defer func() {
		if !started {
			st.end()
		}
	}()
	for i, stream := range sseStreams {
		if stream.signedIn && !signedIn || !wants(types, stream.prefix) {
			last[i] = ""
			continue
		}
		st.followed[i] = true
		// Join the feed before reading the history, so that nothing published between
		// the two is missed; what both bring is written once, by position.
		if err := s.feeds.join(client, i); err != nil {
			return err
		}
		if last[i] == "" {
			continue
		}
		sub, err := s.opts.Bus.Subscribe(ctx, stream.name, last[i])
		if errors.Is(err, bus.ErrTrimmed) {
			st.reset, last[i] = true, ""
			continue
		}
		if err != nil {
			return err
		}
		st.replay[i] = sub
	}

	if !s.track() { // the server is waiting for its streams to end
		return plaza.Errorf(plaza.EUnavailable, "the server is shutting down; connect again")
	}
	unlimitedDeadlines(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer (nginx) must not hold events back
	w.WriteHeader(http.StatusOK)
	started = true
	s.m.open.WithLabelValues("sse").Inc()
	serve := func(out sseOut, gone <-chan struct{}) {
		defer s.wg.Done()
		defer s.m.open.WithLabelValues("sse").Dec()
		defer st.end()
		st.run(out, gone)
	}
	if nc, ok := hijackStream(w, r); ok {
		// On HTTP/1.1 the stream takes the connection and this handler returns: net/http's
		// goroutines, buffers and request would otherwise stay for the stream's life, and
		// the handler's stack with its middleware. A goroutine of the stream's own reads
		// the connection, to notice the client going.
		out := &chunkedConn{conn: nc, gone: make(chan struct{})}
		go out.watch()
		go func() {
			defer out.close()
			defer func() {
				// Off the handler, the middleware no longer catches a panic: it ends this
				// stream, logged, and the server goes on.
				if v := recover(); v != nil {
					s.log.ErrorContext(ctx, "realtime: panic serving an event stream", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
			}()
			serve(out, out.gone)
		}()
		return nil
	}
	serve(&flushWriter{w: w, rc: http.NewResponseController(w)}, r.Context().Done())
	return nil
}

// hijackStream takes an HTTP/1.1 connection whose response head has been written with
// chunked encoding (the request is HTTP/1.1 and no length was set); anything else (HTTP/2,
// HTTP/1.0, a writer that cannot) is streamed through the ResponseWriter.
func hijackStream(w http.ResponseWriter, r *http.Request) (net.Conn, bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		return nil, false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	// The buffers go: net/http has flushed the head, and a client sends nothing more that
	// the stream would answer.
	return nc, err == nil
}

// sseOut is where a stream's bytes go; each write is sent at once or fails. What it
// writes is frame[chunkRoom:len(frame)-2]: the frame's first chunkRoom bytes and last two
// are room for a chunk's framing, so that a chunk goes in one write without a copy.
type sseOut interface {
	write(frame []byte) error
}

// chunkRoom is the room a frame leaves before its bytes: a chunk's size in hex and CRLF.
const chunkRoom = 10

// writeDeadline extends a connection's write deadline to writeWait from now, but only once
// a second: each write still has at least writeWait less a second to complete, without a
// deadline update (a timer of the runtime's) per write.
type writeDeadline struct{ at time.Time }

func (d *writeDeadline) extend(set func(time.Time) error) {
	now := time.Now()
	if d.at.Sub(now) > writeWait-time.Second {
		return
	}
	d.at = now.Add(writeWait)
	_ = set(d.at)
}

// flushWriter streams through the ResponseWriter.
type flushWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	deadline writeDeadline
}

func (f *flushWriter) write(frame []byte) error {
	f.deadline.extend(f.rc.SetWriteDeadline)
	if _, err := f.w.Write(frame[chunkRoom : len(frame)-2]); err != nil {
		return err
	}
	return f.rc.Flush()
}

// chunkedConn streams over a hijacked HTTP/1.1 connection, one chunk per write.
type chunkedConn struct {
	conn     net.Conn
	gone     chan struct{} // closed when the connection has ended, either side
	deadline writeDeadline
}

func (c *chunkedConn) write(frame []byte) error {
	c.deadline.extend(c.conn.SetWriteDeadline)
	n := len(frame) - chunkRoom - 2
	var size [chunkRoom]byte
	head := append(strconv.AppendUint(size[:0], uint64(n), 16), '\r', '\n')
	start := chunkRoom - len(head)
	copy(frame[start:], head)
	frame[len(frame)-2], frame[len(frame)-1] = '\r', '\n'
	_, err := c.conn.Write(frame[start:])
	return err
}

// watch reads the connection until it ends: a client sends nothing on an event stream,
// so what it might is dropped, and the end of its side is the end of the stream.
func (c *chunkedConn) watch() {
	defer close(c.gone)
	var b [64]byte
	for {
		if _, err := c.conn.Read(b[:]); err != nil {
			return
		}
	}
}

// close ends the response (the last chunk, if the client still takes it) and the connection.
func (c *chunkedConn) close() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.conn.Write([]byte("0\r\n\r\n"))
	_ = c.conn.Close()
}

// eventStream is one SSE response after its head: what it has written and its replays.
type eventStream struct {
	s        *Server
	client   *sseClient
	now      string
	last     []string // per stream, the position events must come after
	followed []bool
	replay   []bus.Subscription // per stream, a replay not yet handed over to the feed
	reset    bool
	out      sseOut
	buf      []byte // the frame being written, chunkRoom bytes in (see sseOut)
}

// end takes the stream out of the feeds and closes its replays.
func (st *eventStream) end() {
	st.s.feeds.leave(st.client)
	for _, sub := range st.replay {
		if sub != nil {
			sub.Close()
		}
	}
}

// appendID appends the event ID of the stream's current positions.
func (st *eventStream) appendID(b []byte) []byte {
	for i := range sseStreams {
		if i > 0 {
			b = append(b, idSep...)
		}
		switch {
		case !st.followed[i]:
		case st.last[i] != "":
			b = append(b, st.last[i]...)
		default:
			b = append(b, st.now...)
		}
	}
	return b
}

// frame starts a frame in st.buf.
func (st *eventStream) frame() {
	if cap(st.buf) < chunkRoom {
		st.buf = make([]byte, chunkRoom, 64)
	}
	st.buf = st.buf[:chunkRoom]
}

// send writes the frame begun with frame; false ends the stream.
func (st *eventStream) send() bool {
	st.buf = append(st.buf, 0, 0) // room for the chunk's CRLF
	return st.out.write(st.buf) == nil
}

// write writes an event: id, then tail (eventTail's).
func (st *eventStream) write(i int, id string, tail []byte) bool {
	st.last[i] = id
	st.frame()
	st.buf = append(st.appendID(append(st.buf, "id: "...)), tail...)
	if !st.send() {
		return false
	}
	st.s.sseOut.Inc()
	return true
}

// eventTail is what follows an event's ID: its type and data, the same for every stream.
func eventTail(typ string, data []byte) []byte {
	b := make([]byte, 0, len("\nevent: \ndata: \n\n")+len(typ)+len(data))
	b = append(append(append(b, "\nevent: "...), typ...), "\ndata: "...)
	return append(append(b, data...), "\n\n"...)
}

// replayed writes an event from stream i's replay; false ends the stream.
func (st *eventStream) replayed(i int, ev plaza.Event, ok bool) bool {
	if !ok {
		// The bus cut the replay because this client did not keep up (or the bus
		// closed): end the stream; the client resumes from its last ID.
		if errors.Is(st.replay[i].Err(), bus.ErrSlowConsumer) {
			st.s.m.slowCuts.WithLabelValues("sse").Inc()
		}
		return false
	}
	if !st.client.wants(i, ev.Type, about(ev)) {
		st.last[i] = ev.ID
		return true
	}
	data, _ := json.Marshal(ev)
	return st.write(i, ev.ID, eventTail(ev.Type, data))
}

// run writes the stream to out until the client goes (gone), its session or queue ends
// it, or the server shuts down.
func (st *eventStream) run(out sseOut, gone <-chan struct{}) {
	st.out = out
	st.frame()
	st.buf = fmt.Appendf(st.buf, "retry: %d\nid: ", SSERetry.Milliseconds())
	st.buf = st.appendID(st.buf)
	if st.reset {
		st.buf = append(st.buf, "\nevent: reset\ndata: {}\n\n"...)
	} else {
		// An ID with no data is not an event, but it sets the client's last event ID.
		st.buf = append(st.buf, "\n\n"...)
	}
	if !st.send() {
		return
	}
	client, replay, last := st.client, st.replay, st.last
	heartbeat := time.NewTicker(SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		var ev plaza.Event
		var ok bool
		i := 0
		// An ended client goes now, not after the events it has queued.
		select {
		case <-client.ended:
			return
		default:
		}
		select {
		case <-gone:
			return
		case <-st.s.opts.Shutdown.Done():
			return
		case <-client.ended:
			continue
		case <-heartbeat.C:
			st.frame()
			st.buf = append(st.buf, ": heartbeat\n\n"...)
			if !st.send() {
				return
			}
			continue
		case fe := <-client.queue:
			i = fe.stream
			// While replaying, the feed's first new event marks where the replay (which
			// holds it too: it was subscribed after the feed) hands over.
			for replay[i] != nil && (last[i] == "" || later(fe.id, last[i])) {
				ev, ok := <-replay[i].Events()
				if !st.replayed(i, ev, ok) {
					return
				}
			}
			if sub := replay[i]; sub != nil {
				sub.Close()
				replay[i] = nil
			}
			if last[i] != "" && !later(fe.id, last[i]) {
				continue // written already, from the replay
			}
			if !st.write(i, fe.id, fe.tail) {
				return
			}
			continue
		case ev, ok = <-events(replay[0]):
		case ev, ok = <-events(replay[1]):
			i = 1
		}
		if !st.replayed(i, ev, ok) {
			return
		}
	}
}

func events(sub bus.Subscription) <-chan plaza.Event {
	if sub == nil {
		return nil // a nil channel never delivers: the select skips it
	}
	return sub.Events()
}

// typeFilter is the ?types= list; empty means every type.
type typeFilter []string

func (f typeFilter) match(typ string) bool {
	if len(f) == 0 {
		return true
	}
	for _, t := range f {
		if t == typ {
			return true
		}
	}
	return false
}

func wants(f typeFilter, prefix string) bool {
	if len(f) == 0 {
		return true
	}
	for _, t := range f {
		if strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

func parseTypes(v string) (typeFilter, error) {
	if v == "" {
		return nil, nil
	}
	var f typeFilter
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if !strings.HasPrefix(t, "product.") && !strings.HasPrefix(t, "user.") || len(t) > 64 {
			return nil, &plaza.Error{Code: plaza.EBadRequest, Message: fmt.Sprintf("unknown event type %q: types are product.* and user.*", t),
				Fields: []plaza.FieldError{{Field: "types", Message: "a comma-separated list of product.* and user.* event types"}}}
		}
		f = append(f, t)
	}
	return f, nil
}
