package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

	ctx := r.Context()
	user := ""
	if signedIn {
		user = p.UserID
	}
	client := newSSEClient(plaza.WithPrincipal(ctx, p), user, types)
	defer s.feeds.leave(client)
	reset := false
	followed := make([]bool, len(sseStreams))
	replay := make([]bus.Subscription, len(sseStreams))
	defer func() {
		for _, sub := range replay {
			if sub != nil {
				sub.Close()
			}
		}
	}()
	for i, st := range sseStreams {
		if st.signedIn && !signedIn || !wants(types, st.prefix) {
			last[i] = ""
			continue
		}
		followed[i] = true
		// Join the feed before reading the history, so that nothing published between
		// the two is missed; what both bring is written once, by position.
		if err := s.feeds.join(client, i); err != nil {
			return err
		}
		if last[i] == "" {
			continue
		}
		sub, err := s.opts.Bus.Subscribe(ctx, st.name, last[i])
		if errors.Is(err, bus.ErrTrimmed) {
			reset, last[i] = true, ""
			continue
		}
		if err != nil {
			return err
		}
		replay[i] = sub
	}
	idOf := func() string {
		pos := make([]string, len(sseStreams))
		for i := range pos {
			switch {
			case !followed[i]:
			case last[i] != "":
				pos[i] = last[i]
			default:
				pos[i] = now
			}
		}
		return strings.Join(pos, idSep)
	}

	unlimitedDeadlines(w)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer (nginx) must not hold events back
	w.WriteHeader(http.StatusOK)
	s.wg.Add(1)
	defer s.wg.Done()
	s.m.open.WithLabelValues("sse").Inc()
	defer s.m.open.WithLabelValues("sse").Dec()

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "retry: %d\n", SSERetry.Milliseconds())
	if reset {
		fmt.Fprintf(&buf, "id: %s\nevent: reset\ndata: {}\n\n", idOf())
	} else {
		// An ID with no data is not an event, but it sets the client's last event ID.
		fmt.Fprintf(&buf, "id: %s\n\n", idOf())
	}
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		if err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	if !send() {
		return nil
	}
	write := func(i int, id, typ string, data []byte) bool {
		last[i] = id
		fmt.Fprintf(&buf, "id: %s\nevent: %s\ndata: %s\n\n", idOf(), typ, data)
		if !send() {
			return false
		}
		s.m.out.WithLabelValues("sse").Inc()
		return true
	}
	// replayed writes an event from stream i's replay; false ends the stream.
	replayed := func(i int, ev plaza.Event, ok bool) bool {
		if !ok {
			// The bus cut the replay because this client did not keep up (or the bus
			// closed): end the stream; the client resumes from its last ID.
			if errors.Is(replay[i].Err(), bus.ErrSlowConsumer) {
				s.m.slowCuts.WithLabelValues("sse").Inc()
			}
			return false
		}
		if !client.wants(i, ev.Type, about(ev)) {
			last[i] = ev.ID
			return true
		}
		data, _ := json.Marshal(ev)
		return write(i, ev.ID, ev.Type, data)
	}

	heartbeat := time.NewTicker(SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		var ev plaza.Event
		var ok bool
		i := 0
		// An ended client goes now, not after the events it has queued.
		select {
		case <-client.ended:
			return nil
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Shutdown.Done():
			return nil
		case <-client.ended:
			continue
		case <-heartbeat.C:
			buf.WriteString(": heartbeat\n\n")
			if !send() {
				return nil
			}
			continue
		case fe := <-client.queue:
			i = fe.stream
			// While replaying, the feed's first new event marks where the replay (which
			// holds it too: it was subscribed after the feed) hands over.
			for replay[i] != nil && (last[i] == "" || later(fe.id, last[i])) {
				ev, ok := <-replay[i].Events()
				if !replayed(i, ev, ok) {
					return nil
				}
			}
			if sub := replay[i]; sub != nil {
				sub.Close()
				replay[i] = nil
			}
			if last[i] != "" && !later(fe.id, last[i]) {
				continue // written already, from the replay
			}
			if !write(i, fe.id, fe.typ, fe.data) {
				return nil
			}
			continue
		case ev, ok = <-events(replay[0]):
		case ev, ok = <-events(replay[1]):
			i = 1
		}
		if !replayed(i, ev, ok) {
			return nil
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
