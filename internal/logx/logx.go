// Package logx holds what Plaza's logging adds to log/slog: a bound on repeated warnings,
// and a JSON handler that writes the access log's plain records without slog's per-attribute
// machinery.
package logx

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the messages Limit remembers; past it, it starts over (a burst of
// distinct messages then passes once more).
const maxKeys = 10_000

// Limit wraps h so that a warning or error identical to one written less than every ago
// (same level, same message) is not written but counted; the next one written carries
// the count as suppressed=N. With a dependency down, every request would otherwise log
// the same line (thousands a second). Lines below warning pass untouched.
func Limit(h slog.Handler, every time.Duration) slog.Handler {
	return &limiter{h: h, every: every, st: &state{seen: map[string]*seen{}}}
}

type limiter struct {
	h     slog.Handler
	every time.Duration
	st    *state // shared by the handlers WithAttrs and WithGroup derive
}

type state struct {
	mu   sync.Mutex
	seen map[string]*seen
}

type seen struct {
	last       time.Time
	suppressed int
}

func (l *limiter) Enabled(ctx context.Context, level slog.Level) bool { return l.h.Enabled(ctx, level) }

// AccessLog is the message of access-log lines (REST and gRPC). Each is the one record
// of its request, so none is ever counted away, whatever its level.
const AccessLog = "request"

// Access writes an access-log line at t to log. Unlike Logger.LogAttrs it records no
// source position, which would cost a stack walk on every request for a field the line
// never prints.
func Access(ctx context.Context, log *slog.Logger, t time.Time, level slog.Level, attrs ...slog.Attr) {
	h := log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	if ah, ok := h.(accessHandler); ok {
		if done, _ := ah.handleAccess(t, level, attrs); done {
			return
		}
	}
	r := slog.NewRecord(t, level, AccessLog, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// accessHandler is a handler that writes an access line from its attributes without a
// slog.Record (the JSON handler's shortcut). done is false when it did not write the line.
type accessHandler interface {
	handleAccess(t time.Time, level slog.Level, attrs []slog.Attr) (done bool, err error)
}

// handleAccess passes an access line on untouched, as Handle does.
func (l *limiter) handleAccess(t time.Time, level slog.Level, attrs []slog.Attr) (bool, error) {
	if ah, ok := l.h.(accessHandler); ok {
		return ah.handleAccess(t, level, attrs)
	}
	return false, nil
}

func (l *limiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || r.Message == AccessLog {
		return l.h.Handle(ctx, r)
	}
	key := r.Level.String() + "\x00" + r.Message
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	l.st.mu.Lock()
	s := l.st.seen[key]
	if s != nil && now.Sub(s.last) < l.every {
		s.suppressed++
		l.st.mu.Unlock()
		return nil
	}
	if s == nil {
		if len(l.st.seen) >= maxKeys {
			clear(l.st.seen)
		}
		s = &seen{}
		l.st.seen[key] = s
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	l.st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return l.h.Handle(ctx, r)
}

func (l *limiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limiter{h: l.h.WithAttrs(attrs), every: l.every, st: l.st}
}

func (l *limiter) WithGroup(name string) slog.Handler {
	return &limiter{h: l.h.WithGroup(name), every: l.every, st: l.st}
}
