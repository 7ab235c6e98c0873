package httpapi

import (
	"context"
	"net/http"
	"strings"

	"plaza/internal/plaza"
)

// Authenticator turns a bearer token into a principal. The auth service implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (plaza.Principal, error)
}

// authenticate puts the principal of a valid bearer token in the context. A request without
// credentials passes on as anonymous (routes and services decide what anonymous may do); a
// request with bad credentials is answered 401 here, and counts against its client IP's
// bucket of failed authentications: a client sending garbage tokens is answered 429 once
// that smaller bucket is empty, though it never reaches the per-client limiter.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" || r.URL.Path == "/metrics" { // the scrape's bearer is the metrics token, checked there
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			s.authFailed(w, r, plaza.Errorf(plaza.EUnauthenticated, "the Authorization header must be \"Bearer <token>\""))
			return
		}
		if s.auth == nil {
			s.authFailed(w, r, plaza.Errorf(plaza.EUnauthenticated, "this server does not accept bearer tokens"))
			return
		}
		p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(token))
		if plaza.ErrorCodeOf(err) == plaza.EUnauthenticated {
			s.authFailed(w, r, err)
			return
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		infoFrom(r.Context()).userID = p.UserID
		next.ServeHTTP(w, r.WithContext(plaza.WithPrincipal(r.Context(), p)))
	})
}

// authFailed answers a failed authentication: 401, or 429 once the client IP has failed
// too often.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	if s.authFailures != nil {
		if ok, retry := s.authFailures.Allow("ip:" + infoFrom(r.Context()).ip); !ok {
			err = &plaza.Error{Code: plaza.ERateLimited, RetryAfter: retry,
				Message: "too many requests with bad credentials; retry after the time in Retry-After"}
		}
	}
	writeError(w, r, s.log, err)
}
