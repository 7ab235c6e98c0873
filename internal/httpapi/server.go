// Package httpapi is Plaza's REST transport: the routes, the middleware chain and the one
// place that writes errors as RFC 9457 problem bodies. Handlers decode, call a service and
// encode; business rules live in the services.
package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/ratelimit"
)

// Options configures the transport.
type Options struct {
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	CORSOrigins    []string
	RateLimit      float64 // per client per second; 0 turns limiting off
	RateBurst      int
	TrustedProxies []netip.Prefix
	MaxBodyBytes   int64
	Auth           Authenticator
	Checks         []Check
	Users          Users
	Catalog        Catalog
	Chat           Chat
	Streams        Streams
	GraphQL        GraphQL
	// Metrics says how /metrics is served on this handler: MetricsPublic (the zero value),
	// MetricsToken (with MetricsBearer as the token) or MetricsElsewhere (a 404 naming how
	// to get them; internal/app then serves them on their own listener or not at all).
	Metrics       MetricsAccess
	MetricsBearer string
	// AuthFailureBurst is how many failed authentications a client IP may make before
	// they are answered 429, refilled at one a second (0: authFailureBurst).
	AuthFailureBurst int
}

// MetricsAccess is how the public listener serves /metrics.
type MetricsAccess int

const (
	MetricsPublic MetricsAccess = iota
	MetricsToken
	MetricsElsewhere
)

// Failed authentications allowed per client IP: a burst, then one a second.
const (
	authFailureRate  = 1.0
	authFailureBurst = 10
)

// Server is the REST API as an http.Handler.
type Server struct {
	log      *slog.Logger
	registry *prometheus.Registry
	auth     Authenticator
	checks   []Check
	users    Users
	catalog  Catalog
	chat     Chat
	streams  Streams
	graphql  GraphQL
	origins  []string // PLAZA_CORS_ORIGINS: other origins trusted for cookie-mode auth
	limiter  *ratelimit.Limiter
	// authFailures limits failed authentications per client IP, far below the request
	// limit: a valid client fails rarely, a token guesser constantly.
	authFailures *ratelimit.Limiter
	mux          *http.ServeMux
	// front holds the same routes as mux plus a catch-all for every method, so a request
	// is routed once: a matched one goes straight to its handler, and only what mux
	// itself would answer (no route, wrong method, a redirect) reaches unmatched.
	front       *http.ServeMux
	handler     http.Handler
	draining    atomic.Bool
	healthCache healthCache
	userBodies  *userBodies
	// patterns are the API routes in registration order; each must have an operation in
	// api/openapi/openapi.yaml (a test walks them).
	patterns []string

	metrics       MetricsAccess
	metricsBearer string
}

// New builds the server with every route and the middleware chain.
func New(opts Options) *Server {
	s := &Server{
		log:        opts.Logger,
		registry:   opts.Registry,
		auth:       opts.Auth,
		checks:     opts.Checks,
		users:      opts.Users,
		catalog:    opts.Catalog,
		chat:       opts.Chat,
		streams:    opts.Streams,
		graphql:    opts.GraphQL,
		origins:    opts.CORSOrigins,
		mux:        http.NewServeMux(),
		front:      http.NewServeMux(),
		userBodies: newUserBodies(maxUserBodies),

		metrics:       opts.Metrics,
		metricsBearer: opts.MetricsBearer,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if opts.RateLimit > 0 {
		s.limiter = ratelimit.New(opts.RateLimit, max(opts.RateBurst, 1))
		burst := opts.AuthFailureBurst
		if burst <= 0 {
			burst = authFailureBurst
		}
		s.authFailures = ratelimit.New(min(opts.RateLimit, authFailureRate), burst)
	}
	maxBody := opts.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	s.routes()
	s.front.HandleFunc("/", s.unmatched)

	// The chain, outermost first. Each step's place is deliberate:
	//  1. front: request ID and client IP first, so every later line can quote them;
	//     the security headers, on every response, errors included; the one
	//     ResponseWriter wrapper, so the access log and metrics see the final status;
	//  2. recoverPanics: inside front, so a panic is logged and counted as a 500;
	//  3. cors: preflights answer before auth and limits; 401/429 still carry CORS headers;
	//  4. authenticate: before the limiter, so a signed-in user is limited as themself;
	//  5. rateLimit: per user or per IP; probes and metrics are exempt;
	//  6. limitBody: caps what handlers can read;
	//  7. dispatch: the mux, with problem bodies for unknown routes and wrong methods.
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = limitBody(s.log, maxBody, h)
	h = s.rateLimit(h)
	h = s.authenticate(h)
	h = cors(opts.CORSOrigins, h)
	h = recoverPanics(s.log, h)
	h = front(opts.TrustedProxies, s.log, newHTTPMetrics(s.registry), h)
	s.handler = h
	return s
}

// ServeHTTP serves r. While draining, every response carries Connection: close, which
// net/http honours by closing the connection after it: keep-alive clients move to another
// instance one request at a time while this one still answers, instead of having an idle
// connection reset under a request when the listeners close.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	s.handler.ServeHTTP(w, r)
}

// SetDraining turns readiness to 503 at once, before listeners stop, so load balancers move
// traffic away while in-flight requests finish, and closes each connection after its next
// response.
func (s *Server) SetDraining() { s.draining.Store(true) }

// handle registers h under pattern and records the pattern for logs and metrics.
func (s *Server) handle(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.handleUI(pattern, h)
}

// appRoute is the web app's catch-all.
const appRoute = "GET /{path...}"

// handleUI registers a route that is not an API operation (the web UI's pages and
// assets): logged and measured like any, but not in the API document.
func (s *Server) handleUI(pattern string, h http.Handler) {
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).pattern = r.Pattern
		h.ServeHTTP(w, r)
	})
	s.mux.Handle(pattern, route)
	s.front.Handle(pattern, route)
}

// dispatch serves through the routes, each request matched once.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) { s.front.ServeHTTP(w, r) }

// unmatched answers what the mux itself would (no route, wrong method) with a problem
// body instead of text, keeping the mux's Allow header; the mux's own redirects (to a
// cleaned path, or a subtree's slash) pass as they are.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	cw := &captureWriter{header: http.Header{}}
	s.mux.ServeHTTP(cw, r)
	if loc := cw.header.Get("Location"); loc != "" && cw.status >= 300 && cw.status < 400 {
		// The mux's own redirect to a cleaned path: pass it on as it is.
		http.Redirect(w, r, loc, cw.status)
		return
	}
	if cw.status == http.StatusMethodNotAllowed && isAPIPath(r.URL.Path) && !s.apiRouteAt(r) {
		// Only the app's catch-all (GET) matched: there is no such API route at all.
		cw.status = http.StatusNotFound
		cw.header.Del("Allow")
	}
	if allow := cw.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	detail := "no route matches " + r.URL.Path
	if cw.status == http.StatusMethodNotAllowed {
		detail = r.Method + " is not allowed on " + r.URL.Path
	}
	writeProblem(w, r, cw.status, codeForStatus(cw.status), detail, nil)
}

// apiRouteAt reports whether an API route other than the app's catch-all serves r's path
// with some method.
func (s *Server) apiRouteAt(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" && p != appRoute {
			return true
		}
	}
	return false
}

// captureWriter takes the mux's own error response so it can be rewritten.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
