package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"plaza/internal/logx"
	"plaza/internal/plaza"
)

// reqInfo is filled in as a request travels the chain: the mux's route pattern and the
// authenticated user, so the outer access log and metrics can report them.
type reqInfo struct {
	id      string
	ip      string
	pattern string
	userID  string
	err     error // what went wrong after the handler chose its response (encoding it)
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// RequestIDFrom returns the request ID carried in ctx, or "".
func RequestIDFrom(ctx context.Context) string { return infoFrom(ctx).id }

// request is what the front of the chain keeps of one request, made in one allocation:
// it is the request's context (answering reqInfoKey and plaza.ClientIPKey itself, rather
// than through a context layer for each), the reqInfo and the one ResponseWriter wrapper.
// A WebSocket or an event stream keeps it as long as it is open, so it stays small, and
// its writer is let go once the handler returns.
type request struct {
	context.Context
	info  reqInfo
	sw    statusWriter
	idHdr [1]string // the X-Request-Id header's value
}

func (q *request) Value(key any) any {
	switch key.(type) {
	case reqInfoKey:
		return &q.info
	case plaza.ClientIPKey:
		return q.info.ip
	}
	return q.Context.Value(key)
}

// The values of the headers every response carries, made once. They are assigned under
// their canonical keys rather than with Header.Set, which canonicalizes the key and makes
// a new slice on every request. Sharing is safe: net/http only reads header values, Set
// replaces a slice rather than writing into it, and Add appends to a slice whose capacity
// is its length, so it copies.
var (
	hdrNosniff     = []string{"nosniff"}
	hdrDeny        = []string{"DENY"}
	hdrCSP         = []string{"frame-ancestors 'none'"}
	hdrReferrer    = []string{"strict-origin-when-cross-origin"}
	hdrVaryOrigin  = []string{"Origin"}
	hdrExposeCORS  = []string{"X-Request-ID, ETag, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Cache"}
	hdrCredentials = []string{"true"}
)

// front is the outside of the chain, in this order:
//   - the request ID: a well-formed incoming X-Request-ID is accepted, else one is made;
//     it is echoed, and carried in the context with the client's IP (also as
//     plaza.ClientIPFrom, for the services' per-client throttles), so every later line
//     can quote them;
//   - the security headers, on every response, errors included;
//   - the one ResponseWriter wrapper, and after the request the access log line and the
//     metrics, which so see the final status.
func front(trusted []netip.Prefix, log *slog.Logger, m *httpMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var id string
		if v := r.Header["X-Request-Id"]; len(v) > 0 { // Header.Get would canonicalize "X-Request-ID" into a new string each time
			id = v[0]
		}
		if !plaza.ValidRequestID(id) {
			id = plaza.NewRequestID()
		}
		q := &request{Context: r.Context(), info: reqInfo{id: id, ip: clientIP(r, trusted)}}
		q.sw.ResponseWriter = w
		h := w.Header()
		q.idHdr[0] = id
		h["X-Request-Id"] = q.idHdr[:] // the canonical key, set without canonicalizing it again
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Content-Security-Policy"] = hdrCSP
		h["Referrer-Policy"] = hdrReferrer
		r = r.WithContext(q)
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			end := time.Now()
			accessLine(r, q, log, m, end, end.Sub(start))
			// The request may outlive its response: a WebSocket or an event stream keeps
			// its context (q) for as long as it is open. Through the writer it would keep
			// net/http's response, its connection and their buffers (some 10 KiB) too.
			q.sw.ResponseWriter = finished{}
		}()
		next.ServeHTTP(&q.sw, r)
	})
}

// finished is the writer of a request whose handler has returned: nothing can be written.
type finished struct{}

var errFinished = errors.New("httpapi: the response is finished")

func (finished) Header() http.Header       { return http.Header{} }
func (finished) Write([]byte) (int, error) { return 0, errFinished }
func (finished) WriteHeader(int)           {}

// accessLine writes the access log line of a request that took d, and its metrics.
func accessLine(r *http.Request, q *request, log *slog.Logger, m *httpMetrics, end time.Time, d time.Duration) {
	ri, status := &q.info, q.sw.code()
	m.observe(r.Method, ri.pattern, status, d)
	level := slog.LevelInfo
	if status >= 500 || ri.err != nil {
		level = slog.LevelError
	}
	attrs := accessAttrs.Get().(*[10]slog.Attr)
	defer accessAttrs.Put(attrs)
	*attrs = [10]slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", routeLabel(ri.pattern)),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", q.sw.bytes),
		slog.Duration("duration", d),
		slog.String("request_id", ri.id),
		slog.String("user_id", ri.userID),
		slog.String("client_ip", ri.ip),
	}
	n := 9
	if ri.err != nil {
		attrs[n] = slog.String("err", ri.err.Error())
		n++
	}
	logx.Access(r.Context(), log, end, level, attrs[:n]...)
}

// accessAttrs holds the attributes of access lines being written: handed to the log
// handler, they would otherwise be a heap allocation of 400 bytes a request.
var accessAttrs = sync.Pool{New: func() any { return new([10]slog.Attr) }}

// recoverPanics answers a panicking handler with a 500 problem (unless the response has
// started) and logs the stack; the server keeps serving.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()), "request_id", RequestIDFrom(r.Context()))
			if sw, ok := w.(*statusWriter); ok && (sw.written() || sw.hijacked) {
				return
			}
			writeError(w, r, log, plaza.Errorf(plaza.EInternal, "panic"))
		}()
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and decorates responses for allowed origins only. Credentials are
// allowed only with an explicit origin, never with "*".
func cors(origins []string, next http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	allowed := func(o string) bool { return any || slices.Contains(origins, o) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if v, ok := h["Vary"]; ok {
			h["Vary"] = append(v, "Origin")
		} else {
			h["Vary"] = hdrVaryOrigin
		}
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" || !allowed(origin) {
			if preflight {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h["Access-Control-Allow-Origin"] = []string{origin}
			h["Access-Control-Allow-Credentials"] = hdrCredentials
		}
		h["Access-Control-Expose-Headers"] = hdrExposeCORS
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", sanitizeHeaderList(req))
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func sanitizeHeaderList(s string) string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f != "" && plaza.ValidRequestID(f) {
			out = append(out, f)
		}
	}
	return strings.Join(out, ", ")
}

// limitBody caps request bodies; reading past the cap fails and the handler answers 413.
func limitBody(log *slog.Logger, max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, r, log, errTooLarge)
			return
		}
		if r.Body != http.NoBody { // net/http's body of a request without one: nothing to cap
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}
