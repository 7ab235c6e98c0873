package logx

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// NewJSONHandler is slog.NewJSONHandler with a shortcut for the records a server writes
// most, the access log's: when every key and string is plain printable ASCII and every
// value a string, integer, bool or duration, the line is appended directly, with none of
// slog's per-attribute machinery. Its bytes are exactly slog's (a test compares them);
// any other record (quotes, control characters, non-ASCII, groups, other kinds, a handler
// from WithAttrs or WithGroup) is written by slog's own handler. Both write whole lines
// through one lock, so w needs no locking of its own.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	lw := &lockedWriter{w: w}
	slow := slog.NewJSONHandler(lw, opts)
	if opts.AddSource || opts.ReplaceAttr != nil {
		return slow // the shortcut knows neither
	}
	return &jsonHandler{slow: slow, w: lw}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type jsonHandler struct {
	slow slog.Handler
	w    *lockedWriter
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *jsonHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.slow.Enabled(ctx, l) }

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.slow.WithAttrs(as) }

func (h *jsonHandler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := linePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 { // a rare huge line is not kept
			linePool.Put(bp)
		}
	}()
	line, ok := appendLine((*bp)[:0], r)
	*bp = line
	if !ok {
		return h.slow.Handle(ctx, r)
	}
	_, err := h.w.Write(line)
	return err
}

// handleAccess writes an access line straight from its attributes, without a slog.Record
// to fill and walk; done is false for a line the shortcut does not cover, which the caller
// then hands to Handle as a record.
func (h *jsonHandler) handleAccess(t time.Time, level slog.Level, attrs []slog.Attr) (done bool, err error) {
	bp := linePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 {
			linePool.Put(bp)
		}
	}()
	line, ok := appendHead((*bp)[:0], t, level, AccessLog)
	for i := 0; ok && i < len(attrs); i++ {
		line, ok = appendAttr(line, attrs[i])
	}
	*bp = line
	if !ok {
		return false, nil
	}
	_, err = h.w.Write(append(line, "}\n"...))
	return true, err
}

// appendLine appends r as slog's JSON handler would write it, or reports false for a
// record the shortcut does not cover.
func appendLine(b []byte, r slog.Record) ([]byte, bool) {
	b, ok := appendHead(b, r.Time, r.Level, r.Message)
	if !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	if !ok {
		return b, false
	}
	return append(b, "}\n"...), true
}

// appendHead appends a line's time, level and message, or reports false when the
// shortcut does not cover them.
func appendHead(b []byte, t time.Time, l slog.Level, msg string) ([]byte, bool) {
	if t.IsZero() || t.Year() < 0 || t.Year() >= 10000 {
		return b, false
	}
	level := l.String()
	if !plain(msg) || !plain(level) {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","msg":"`...)
	b = append(b, msg...)
	return append(b, '"'), true
}

// appendAttr appends a, or reports false for an attribute the shortcut does not cover.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" || !plain(a.Key) {
		return b, false
	}
	b = append(b, `,"`...)
	b = append(b, a.Key...)
	b = append(b, `":`...)
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		s := v.String()
		if !plain(s) {
			return b, false
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	default:
		return b, false
	}
	return b, true
}

// plain reports whether s is printable ASCII without '"' or '\', which JSON carries as it
// is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte says which bytes plain accepts: one load a byte instead of four comparisons
// (the access line checks some 150 bytes of strings on every request).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
