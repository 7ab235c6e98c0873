package httpapi

import (
	"context"
	"net/http"
	"time"

	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// Chat is the chat service as the REST routes use it (chat.Service implements it).
type Chat interface {
	CreateRoom(ctx context.Context, slug, name string) (chat.Room, error)
	Rooms(ctx context.Context) ([]chat.Room, error)
	History(ctx context.Context, room string, page plaza.PageRequest) (plaza.Page[chat.Message], error)
	DeleteMessage(ctx context.Context, room, id string) error
}

// Streams is the real-time transport (realtime.Server implements it). Its handlers return
// an error only before a stream starts (bad origin, no credentials, bad resume ID), which
// is answered here like any other; once streaming they answer nothing more.
type Streams interface {
	ServeWebSocket(w http.ResponseWriter, r *http.Request) error
	ServeEvents(w http.ResponseWriter, r *http.Request) error
	IssueTicket(ctx context.Context) (ticket string, ttl time.Duration, err error)
}

type createRoomRequest struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

func (s *Server) handleRoomCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := Decode[createRoomRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		room, err := s.chat.CreateRoom(r.Context(), in.Slug, in.Name)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		w.Header().Set("Location", "/api/rooms/"+room.Slug+"/messages")
		encode(w, r, http.StatusCreated, room)
	})
}

func (s *Server) handleRoomList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rooms, err := s.chat.Rooms(r.Context())
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w) // member counts are live
		encode(w, r, http.StatusOK, list[chat.Room]{Items: rooms})
	})
}

// handleRoomMessages pages a room's history newest first; before is the next_cursor of
// the previous page.
func (s *Server) handleRoomMessages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := pageParams(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		req.Cursor = r.URL.Query().Get("before")
		page, err := s.chat.History(r.Context(), r.PathValue("room"), req)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		encode(w, r, http.StatusOK, listOf(page))
	})
}

func (s *Server) handleRoomMessageDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.chat.DeleteMessage(r.Context(), r.PathValue("room"), r.PathValue("id")); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleWSTicket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ttl, err := s.streams.IssueTicket(r.Context())
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		noStore(w)
		encode(w, r, http.StatusOK, struct {
			Ticket    string `json:"ticket"`
			ExpiresIn int    `json:"expires_in"`
		}{t, int(ttl / time.Second)})
	})
}

// handleStream adapts a streaming handler: its errors before the stream are answered as
// problem bodies.
func (s *Server) handleStream(serve func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := serve(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}
