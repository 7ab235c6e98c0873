package httpapi

import (
	"encoding/json"
	"net/http"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// Request bodies. Only the fields a client may set exist here: anything else (id,
// created_at, updated_at, a misspelling) is an unknown field and a 400.
type (
	registerRequest struct {
		Name     string     `json:"name"`
		Email    string     `json:"email"`
		Password string     `json:"password"`
		Role     plaza.Role `json:"role"`
	}
	// putUserRequest replaces the user: a missing name or email is empty, which the
	// service refuses (after deciding whether the caller may edit this user at all).
	// Password and role are optional: the password is write-only, the role admin-only.
	putUserRequest struct {
		Name     string      `json:"name"`
		Email    string      `json:"email"`
		Password *string     `json:"password"`
		Role     *plaza.Role `json:"role"`
	}
	// patchUserRequest is a JSON merge patch (RFC 7396) of the user. The user is a flat
	// object, so a member replaces that field and an absent member leaves it. Every field
	// is required, so removing one (null) sets it empty, which validation then refuses.
	patchUserRequest struct {
		Name     optional[string]     `json:"name"`
		Email    optional[string]     `json:"email"`
		Password optional[string]     `json:"password"`
		Role     optional[plaza.Role] `json:"role"`
	}
	loginRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	refreshTokenRequest struct {
		RefreshToken string `json:"refresh_token"`
	}
)

// optional is a merge patch member: absent, null, or a value.
type optional[T any] struct {
	set bool
	v   T // the zero value for null
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &o.v)
}

// ptr returns nil when the member is absent, else its value.
func (o optional[T]) ptr() *T {
	if !o.set {
		return nil
	}
	return &o.v
}

// noStore marks a response as never to be cached: user data and tokens are personal.
func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

func (s *Server) handleUserRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[registerRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		u, err := s.users.Register(r.Context(), users.NewUser{Name: in.Name, Email: in.Email, Password: in.Password, Role: in.Role})
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		w.Header().Set("Location", "/api/users/"+u.ID)
		encode(w, http.StatusCreated, u)
	})
}

func (s *Server) handleUserList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, cursor, err := pageParams(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		items, next, err := s.users.List(r.Context(), limit, cursor)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		encode(w, http.StatusOK, list[users.User]{Items: items, NextCursor: next})
	})
}

func (s *Server) handleUserMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.users.Me(r.Context())
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.users.Get(r.Context(), r.PathValue("id"))
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserPut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[putUserRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		u, err := s.users.Update(r.Context(), r.PathValue("id"),
			users.Changes{Name: &in.Name, Email: &in.Email, Password: in.Password, Role: in.Role})
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[patchUserRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		u, err := s.users.Update(r.Context(), r.PathValue("id"),
			users.Changes{Name: in.Name.ptr(), Email: in.Email.ptr(), Password: in.Password.ptr(), Role: in.Role.ptr()})
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.users.Delete(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u users.User, err error) {
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	noStore(w)
	encode(w, http.StatusOK, u)
}

func (s *Server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[loginRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		// Login throttling counts failures per client IP as well as per email.
		ctx := plaza.WithClientIP(r.Context(), infoFrom(r.Context()).ip)
		tokens, err := s.users.Login(ctx, in.Email, in.Password)
		s.writeTokens(w, r, tokens, err)
	})
}

func (s *Server) handleRefresh() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[refreshTokenRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		tokens, err := s.users.Refresh(r.Context(), in.RefreshToken)
		s.writeTokens(w, r, tokens, err)
	})
}

func (s *Server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[refreshTokenRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if err := s.users.Logout(r.Context(), in.RefreshToken); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// writeTokens answers a token response; RFC 6749 §5.1 requires no-store on it.
func (s *Server) writeTokens(w http.ResponseWriter, r *http.Request, t users.Tokens, err error) {
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	noStore(w)
	encode(w, http.StatusOK, t)
}
