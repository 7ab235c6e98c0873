package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
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

// identify accepts a well-formed incoming X-Request-ID or generates one, echoes it, and
// carries it in the context together with the client's IP (also as plaza.ClientIPFrom, for
// the services' per-client throttles).
func identify(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if v := r.Header["X-Request-Id"]; len(v) > 0 { // Header.Get would canonicalize "X-Request-ID" into a new string each time
			id = v[0]
		}
		if !plaza.ValidRequestID(id) {
			id = plaza.NewRequestID()
		}
		w.Header()["X-Request-Id"] = []string{id} // the canonical key, set without canonicalizing it again
		ri := &reqInfo{id: id, ip: clientIP(r, trusted)}
		ctx := plaza.WithClientIP(context.WithValue(r.Context(), reqInfoKey{}, ri), ri.ip)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
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

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Content-Security-Policy"] = hdrCSP
		h["Referrer-Policy"] = hdrReferrer
		next.ServeHTTP(w, r)
	})
}

// observe wraps the response writer once and, after the request, writes the access log line
// and the metrics. It is the only wrapper in the chain.
func observe(log *slog.Logger, m *httpMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			ri := infoFrom(r.Context())
			end := time.Now()
			d := end.Sub(start)
			m.observe(r.Method, ri.pattern, sw.code(), d)
			level := slog.LevelInfo
			if sw.code() >= 500 || ri.err != nil {
				level = slog.LevelError
			}
			attrs := [10]slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", routeLabel(ri.pattern)),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.code()),
				slog.Int64("bytes", sw.bytes),
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
		}()
		next.ServeHTTP(sw, r)
	})
}

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
