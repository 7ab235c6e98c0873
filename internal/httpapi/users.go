package httpapi

import (
	"net/http"

	"plaza/internal/etag"
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
		Name            string      `json:"name"`
		Email           string      `json:"email"`
		Password        *string     `json:"password"`
		Role            *plaza.Role `json:"role"`
		CurrentPassword *string     `json:"current_password"`
	}
	// patchedUser is the user after a JSON merge patch (RFC 7396) of their current fields:
	// a field the patch removed (null) is empty, which validation refuses (a role change
	// needs an admin first). The password is write-only, so only a patch can add it.
	patchedUser struct {
		Name            string     `json:"name"`
		Email           string     `json:"email"`
		Password        *string    `json:"password"`
		Role            plaza.Role `json:"role"`
		CurrentPassword *string    `json:"current_password"`
	}
	loginRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	refreshTokenRequest struct {
		RefreshToken string `json:"refresh_token"`
	}
)

// changes is the update a full user document asks for.
func (in putUserRequest) changes() users.Changes {
	return users.Changes{Name: &in.Name, Email: &in.Email, Password: in.Password, Role: in.Role, CurrentPassword: in.CurrentPassword}
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
		encode(w, r, http.StatusCreated, u)
	})
}

func (s *Server) handleUserList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := pageParams(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		page, err := s.users.List(r.Context(), req)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		encode(w, r, http.StatusOK, listOf(page))
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
		id := r.PathValue("id")
		u, err := s.users.Update(r.Context(), id, ifMatch(r, id), in.changes())
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		patch, err := readMergePatch(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		id := r.PathValue("id")
		u, err := s.users.Patch(r.Context(), id, ifMatch(r, id), func(cur users.Editable) (users.Changes, error) {
			in, err := mergePatch[patchedUser](cur, patch)
			return users.Changes{Name: &in.Name, Email: &in.Email, Password: in.Password, Role: &in.Role, CurrentPassword: in.CurrentPassword}, err
		})
		s.writeUser(w, r, u, err)
	})
}

func (s *Server) handleUserDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := s.users.Delete(r.Context(), id, ifMatch(r, id)); err != nil {
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
	tag := etag.Make(u.ID, u.Version)
	w.Header().Set("ETag", tag)
	if r.Method == http.MethodGet && noneMatch(r.Header.Values("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body, err := s.userBodies.body(u)
	if err != nil {
		encode(w, r, http.StatusOK, u) // reports the encoding failure as encode does
		return
	}
	writeRaw(w, http.StatusOK, body)
}

func (s *Server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[loginRequest](r)
		if err == nil && cookieMode(r) {
			err = s.checkCookieRequest(r)
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		tokens, err := s.users.Login(r.Context(), in.Email, in.Password)
		s.writeTokens(w, r, tokens, err)
	})
}

func (s *Server) handleRefresh() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := s.refreshTokenOf(r)
		if err != nil {
			s.writeTokens(w, r, users.Tokens{}, err)
			return
		}
		tokens, err := s.users.Refresh(r.Context(), token)
		s.writeTokens(w, r, tokens, err)
	})
}

func (s *Server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := s.refreshTokenOf(r)
		if cookieMode(r) && plaza.ErrorCodeOf(err) != plaza.EForbidden {
			// Whatever happens next, this browser's refresh cookie is done with.
			setRefreshCookie(w, r, "")
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if err := s.users.Logout(r.Context(), token); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
