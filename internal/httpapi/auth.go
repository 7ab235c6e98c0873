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
// request with bad credentials is answered 401 here.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			writeError(w, r, s.log, plaza.Errorf(plaza.EUnauthenticated, "the Authorization header must be \"Bearer <token>\""))
			return
		}
		if s.auth == nil {
			writeError(w, r, s.log, plaza.Errorf(plaza.EUnauthenticated, "this server does not accept bearer tokens"))
			return
		}
		p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		infoFrom(r.Context()).userID = p.UserID
		next.ServeHTTP(w, r.WithContext(plaza.WithPrincipal(r.Context(), p)))
	})
}
