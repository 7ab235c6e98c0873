package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"plaza/internal/httpapi"
	"plaza/internal/logx"
	"plaza/internal/plaza"
)

// ServeHTTP is the HTTP listener: the gateway's own probes and metrics, then for
// everything else, in order: request ID and client, route, edge authentication, rate
// limits, and the proxy. Every answer is logged and counted once, by route.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, false)
}

// GRPCHandler serves the gRPC listener (h2c): every call goes to the gRPC pool, after the
// same edge authentication and client limit, with refusals as gRPC statuses.
func (g *Gateway) GRPCHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, true) })
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, grpcCall bool) {
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if !plaza.ValidRequestID(id) {
		id = plaza.NewRequestID()
	}
	r.Header.Set("X-Request-ID", id)
	w.Header().Set("X-Request-ID", id)
	ip := peerIP(r)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	st := g.state.Load()
	x := &exchange{grpc: grpcCall, stream: grpcCall || isStream(r)}
	var routeName string
	defer func() {
		status := rec.status
		if grpcCall {
			status = rec.grpcStatus()
		}
		class := strconv.Itoa(rec.status/100) + "xx"
		g.metrics.requests.WithLabelValues(routeName, r.Method, class).Inc()
		g.metrics.duration.WithLabelValues(routeName).Observe(time.Since(start).Seconds())
		// Typed attributes and the duration in nanoseconds, as the instances' access log: no
		// value boxed in an interface, no float through encoding/json.
		attrs := make([]slog.Attr, 0, 11)
		attrs = append(attrs, slog.String("transport", "gateway"), slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("route", routeName), slog.Int("status", status),
			slog.Duration("duration", time.Since(start)), slog.String("client_ip", ip), slog.Int64("bytes", rec.bytes))
		if u := x.upstream.Load(); u != nil {
			attrs = append(attrs, slog.String("upstream", u.addr))
		}
		if n := x.retries.Load(); n > 0 {
			attrs = append(attrs, slog.Int("retries", int(n)))
		}
		g.log.LogAttrs(r.Context(), slog.LevelInfo, logx.AccessLog, attrs...)
	}()

	if grpcCall {
		x.route, x.pool = &route{Route: Route{Name: "grpc", Auth: st.cfg.GRPC.Auth}}, st.grpc
	} else {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			routeName = "gateway"
			g.own(rec, r)
			return
		}
		rt := st.match(r)
		if rt == nil {
			routeName = "none"
			g.refuse(rec, r, x, id, &plaza.Error{Code: plaza.ENotFound, Message: "no route matches " + r.Method + " " + r.URL.Path})
			return
		}
		x.route, x.pool = rt, rt.pool
	}
	routeName = x.route.Name

	// Identity the client sends is never believed: it is set here, from a verified token.
	r.Header.Del("X-Forwarded-User")
	key := "ip:" + ip
	if x.route.Auth != AuthNone {
		token, hasToken := bearer(r)
		switch {
		case hasToken:
			c, err := g.opts.Verifier.Verify(r.Context(), token)
			if err != nil {
				g.refuse(rec, r, x, id, err)
				return
			}
			r.Header.Set("X-Forwarded-User", c.UserID)
			key = "user:" + c.UserID
		case x.route.Auth == AuthRequired:
			g.refuse(rec, r, x, id, plaza.Errorf(plaza.EUnauthenticated, "sign in first: this needs a Bearer access token"))
			return
		}
	}
	if lim := st.cfg.Limits; lim.Rate > 0 && r.Method != http.MethodOptions {
		if !g.limit(rec, r, x, id, "client", key, lim) {
			return
		}
	}
	if lim := x.route.Limit; lim != nil && lim.Rate > 0 && r.Method != http.MethodOptions {
		if !g.limit(rec, r, x, id, "route:"+x.route.Name, key, *lim) {
			return
		}
	}

	ctx := context.WithValue(r.Context(), exchangeKey{}, x)
	if !grpcCall && x.stream {
		g.streams.Add(1)
		defer g.streams.Done()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.streamsCtx, cancel)()
	}
	// A route's timeout bounds an ordinary exchange; a stream lives as long as both ends
	// want it (the client's own gRPC deadline travels in grpc-timeout). A client need not
	// say it asks for a stream (curl sends no Accept: text/event-stream), so the timeout
	// also stops when the answer turns out to be one (see retrying.RoundTrip).
	if d := x.route.Timeout; d > 0 && !x.stream {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		x.timeout = time.AfterFunc(d, func() { cancel(errRouteTimeout) })
		defer x.timeout.Stop()
	}
	r = r.WithContext(ctx)
	if grpcCall {
		g.grpc.ServeHTTP(rec, r)
	} else {
		g.proxy.ServeHTTP(rec, r)
	}
}

// limit applies one limit and sets the RateLimit-* headers; false when refused (answered).
func (g *Gateway) limit(w http.ResponseWriter, r *http.Request, x *exchange, id, scope, key string, lim Limit) bool {
	v := g.limiter.allow(r.Context(), scope, key, lim)
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(v.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(v.remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(v.reset.Seconds()))))
	x.limited = true
	if v.ok {
		return true
	}
	name := "client"
	if scope != "client" {
		name = x.route.Name
	}
	g.metrics.limited.WithLabelValues(name).Inc()
	g.refuse(w, r, x, id, &plaza.Error{Code: plaza.ERateLimited, RetryAfter: v.retry, Message: "too many requests; retry after the time in Retry-After"})
	return false
}

// own answers the gateway's probes and metrics.
func (g *Gateway) own(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		if g.Ready() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		reason := "no upstream available"
		if g.draining.Load() {
			reason = "draining"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "down", "reason": reason})
	case "/metrics":
		g.opts.Metrics.ServeHTTP(w, r)
	}
}

// refuse answers err at the edge: a problem body over HTTP (docs/contracts.md), a
// trailers-only status over gRPC.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, x *exchange, id string, err error) {
	e := plaza.AsError(err)
	if x.grpc {
		writeGRPCStatus(w, e)
		return
	}
	status := httpapi.StatusOf(e.Code)
	h := w.Header()
	switch e.Code {
	case plaza.EUnauthenticated:
		h.Set("WWW-Authenticate", `Bearer realm="plaza"`)
	case plaza.ERateLimited, plaza.EUnavailable:
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		}
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "https://plaza.dev/problems/" + string(e.Code), "title": http.StatusText(status), "status": status,
		"detail": e.Message, "instance": id, "code": e.Code,
	})
}

// grpcCodes are the gRPC codes of docs/contracts.md for what the gateway refuses.
var grpcCodes = map[plaza.ErrorCode]int{plaza.EUnauthenticated: 16, plaza.ERateLimited: 8, plaza.EUnavailable: 14, plaza.ENotFound: 12}

func writeGRPCStatus(w http.ResponseWriter, e *plaza.Error) {
	code, ok := grpcCodes[e.Code]
	if !ok {
		code = 13
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcEncode(e.Message))
	w.WriteHeader(http.StatusOK)
}

// grpcEncode percent-encodes a grpc-message as the gRPC HTTP/2 protocol asks.
func grpcEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// newProxy is one reverse proxy over transport: it sets Forwarded and X-Forwarded-* from
// what it saw (an edge believes no incoming ones), and answers failures as problems.
//
// Streams are not buffered: ReverseProxy flushes every write at once of an answer that is
// text/event-stream or has no Content-Length (chunked streams, every gRPC answer), and a
// 101 becomes a two-way copy. An answer of known length (every ordinary one) goes out as
// the server's buffer fills and at its end, in one write where it fits: FlushInterval -1
// for those cost a write of the headers alone and another of the body, a timer and its
// goroutine per request, and a TCP segment more for the client to read.
func (g *Gateway) newProxy(transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream.invalid" // chosen per attempt
			pr.SetXForwarded()
			proto := "http"
			if pr.In.TLS != nil {
				proto = "https"
			}
			pr.Out.Header.Set("Forwarded", httpapi.ForwardedElement(peerIP(pr.In), pr.In.Host, proto))
			pr.Out.Host = pr.In.Host // the instance sees the host the client asked for (WebSocket origin checks)
		},
		Transport:  &retrying{g: g, base: transport},
		BufferPool: copyBuffers,
		ErrorLog:   slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			x := exchangeFrom(r.Context())
			id := r.Header.Get("X-Request-ID")
			switch {
			case errors.Is(err, errNoUpstream):
				g.refuse(w, r, x, id, &plaza.Error{Code: plaza.EUnavailable, RetryAfter: time.Second, Message: "no instance is available; retry shortly"})
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(context.Cause(r.Context()), errRouteTimeout):
				status := http.StatusGatewayTimeout
				if x.grpc {
					writeGRPCStatus(w, &plaza.Error{Code: plaza.EUnavailable, Message: "the instance did not answer in time"})
					return
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(status)
				json.NewEncoder(w).Encode(map[string]any{"type": "https://plaza.dev/problems/unavailable", "title": http.StatusText(status),
					"status": status, "detail": "the instance did not answer within the route's timeout", "instance": id, "code": plaza.EUnavailable})
			case r.Context().Err() != nil:
				// The client went away; nobody reads an answer.
			default:
				g.log.WarnContext(r.Context(), "gateway: upstream exchange failed", "request_id", id, "err", err)
				if x.grpc {
					writeGRPCStatus(w, &plaza.Error{Code: plaza.EUnavailable, Message: "the instance could not be reached"})
					return
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusBadGateway)
				json.NewEncoder(w).Encode(map[string]any{"type": "https://plaza.dev/problems/unavailable", "title": "Bad Gateway",
					"status": http.StatusBadGateway, "detail": "the instance could not be reached or failed mid-answer", "instance": id, "code": plaza.EUnavailable})
			}
		},
	}
}

// copyBuffers lends ReverseProxy its copy buffers: without a pool it allocates 32 KiB per
// request, most of what the gateway allocated, and the garbage collector's work with it.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// isStream: a WebSocket upgrade or an event stream asked for, balanced by open
// connections and never cut by a route timeout.
func isStream(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recorder notes the status and size for the access log; Unwrap keeps Flush and Hijack
// (WebSocket) reachable through http.ResponseController, which the proxy uses.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 || code == http.StatusSwitchingProtocols {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	r.wrote = true
	http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// grpcStatus is the call's grpc-status (a trailer, or a header of a trailers-only answer).
func (r *recorder) grpcStatus() int {
	h := r.Header()
	v := h.Get("Grpc-Status")
	if v == "" {
		v = h.Get(http.TrailerPrefix + "Grpc-Status")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// streamResponse: an upgrade (WebSocket) or an event stream answered, which no route
// timeout may cut, even when the request did not say it wanted one.
func streamResponse(res *http.Response) bool {
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	return res.StatusCode == http.StatusSwitchingProtocols || strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}
