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
	pos := make([]string, len(sseStreams))
	if lastID != "" {
		parts := strings.Split(lastID, idSep)
		if len(parts) != len(sseStreams) {
			return plaza.Errorf(plaza.EBadRequest, "Last-Event-ID %q is not an ID this server sent", lastID)
		}
		copy(pos, parts)
	}

	reset := false
	subs := make([]bus.Subscription, len(sseStreams))
	ctx := r.Context()
	for i, st := range sseStreams {
		if st.signedIn && !signedIn || !wants(types, st.prefix) {
			pos[i] = ""
			continue
		}
		if pos[i] == "" {
			pos[i] = now
		}
		sub, err := s.opts.Bus.Subscribe(ctx, st.name, pos[i])
		if errors.Is(err, bus.ErrTrimmed) {
			reset, pos[i] = true, now
			sub, err = s.opts.Bus.Subscribe(ctx, st.name, now)
		}
		if err != nil {
			for _, sub := range subs[:i] {
				if sub != nil {
					sub.Close()
				}
			}
			return err
		}
		defer sub.Close()
		subs[i] = sub
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
		fmt.Fprintf(&buf, "id: %s\nevent: reset\ndata: {}\n\n", strings.Join(pos, idSep))
	} else {
		// An ID with no data is not an event, but it sets the client's last event ID.
		fmt.Fprintf(&buf, "id: %s\n\n", strings.Join(pos, idSep))
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

	heartbeat := time.NewTicker(SSEHeartbeat)
	defer heartbeat.Stop()
	catalog, users := events(subs[0]), events(subs[1])
	for {
		var ev plaza.Event
		var ok bool
		i := 0
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Shutdown.Done():
			return nil
		case <-heartbeat.C:
			buf.WriteString(": heartbeat\n\n")
			if !send() {
				return nil
			}
			continue
		case ev, ok = <-catalog:
		case ev, ok = <-users:
			i = 1
		}
		if !ok {
			// The bus cut the subscription because this client did not keep up (or the
			// bus closed): end the stream; the client resumes from its last ID.
			if errors.Is(subs[i].Err(), bus.ErrSlowConsumer) {
				s.m.slowCuts.WithLabelValues("sse").Inc()
			}
			return nil
		}
		pos[i] = ev.ID
		if !types.match(ev.Type) || !strings.HasPrefix(ev.Type, sseStreams[i].prefix) || sseStreams[i].signedIn && !about(ev, p.UserID) {
			continue
		}
		data, _ := json.Marshal(ev)
		fmt.Fprintf(&buf, "id: %s\nevent: %s\ndata: %s\n\n", strings.Join(pos, idSep), ev.Type, data)
		if !send() {
			return nil
		}
		s.m.out.WithLabelValues("sse").Inc()
	}
}

func events(sub bus.Subscription) <-chan plaza.Event {
	if sub == nil {
		return nil // a nil channel never delivers: the select skips it
	}
	return sub.Events()
}

// about reports whether a user event is about user id.
func about(ev plaza.Event, id string) bool {
	var d struct {
		ID string `json:"id"`
	}
	return json.Unmarshal(ev.Data, &d) == nil && d.ID == id
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
