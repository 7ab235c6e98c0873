package grpcapi

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/grpc"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// chatService is plaza.v1.ChatService.
type chatService struct {
	s *Server
}

func (cs chatService) SendMessage(ctx context.Context, req *plazav1.SendMessageRequest) (*plazav1.SendMessageResponse, error) {
	m, err := cs.s.opts.Chat.Send(ctx, req.GetRoom(), req.GetText(), req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &plazav1.SendMessageResponse{Message: messagePB(m)}, nil
}

func (cs chatService) ListMessages(ctx context.Context, req *plazav1.ListMessagesRequest) (*plazav1.ListMessagesResponse, error) {
	page, err := cs.s.opts.Chat.History(ctx, req.GetRoom(), plaza.PageRequest{Limit: int(req.GetPageSize()), Cursor: req.GetPageToken()})
	if err != nil {
		return nil, renamed(err, pageFields)
	}
	return &plazav1.ListMessagesResponse{Messages: messagesPB(page.Items), NextPageToken: page.NextCursor}, nil
}

// StreamRoom makes the caller a member of the room for as long as the stream is open, as
// a WebSocket join does: it subscribes to the room's bus stream first, then joins (so a
// message sent meanwhile is in the history or arrives live, and is sent once), renews the
// caller's presence every third of the presence TTL, ends when the caller's session does,
// and leaves when the stream ends.
func (cs chatService) StreamRoom(req *plazav1.StreamRoomRequest, ss grpc.ServerStreamingServer[plazav1.StreamRoomResponse]) error {
	ctx := ss.Context()
	if _, ok := plaza.PrincipalFrom(ctx); !ok {
		// Checked before subscribing, so an anonymous caller costs no subscription; Join
		// (the service) is what decides.
		return plaza.Errorf(plaza.EUnauthenticated, "sign in first: chat needs a Bearer access token")
	}
	room := req.GetRoom()
	sub, err := cs.s.opts.Bus.Subscribe(ctx, chat.Stream(room), "")
	if err != nil {
		return err
	}
	defer sub.Close()
	conn := "grpc-" + plaza.NewID()
	j, err := cs.s.opts.Chat.Join(ctx, room, conn, req.GetSince())
	if err != nil {
		return err
	}
	defer func() {
		// The client may be gone already: presence is updated in a context of its own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := cs.s.opts.Chat.Leave(ctx, room, conn); err != nil {
			cs.s.log.WarnContext(ctx, "grpc: leaving a room failed; the entry expires with its TTL", "room", room, "err", err)
		}
	}()
	if err := ss.Send(&plazav1.StreamRoomResponse{Room: room, Event: &plazav1.StreamRoomResponse_Joined{Joined: &plazav1.Joined{
		History: messagesPB(j.History), Members: membersPB(j.Members), Recovered: j.Recovered,
	}}}); err != nil {
		return err
	}
	// Messages that arrived while joining may be in the history already.
	seen := make(map[string]bool, len(j.History))
	for _, m := range j.History {
		seen[m.ID] = true
	}
	p, _ := plaza.PrincipalFrom(ctx)
	beat := time.NewTicker(cs.s.opts.PresenceTTL / 3)
	defer beat.Stop()
	for {
		var ev plaza.Event
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cs.s.opts.Shutdown.Done():
			return plaza.Errorf(plaza.EUnavailable, "the server is shutting down; reconnect with since")
		case <-beat.C:
			if err := cs.s.opts.Users.CheckSession(ctx); plaza.ErrorCodeOf(err) == plaza.EUnauthenticated {
				return err
			}
			if err := cs.s.opts.Chat.Heartbeat(ctx, room, conn); err != nil && ctx.Err() == nil {
				cs.s.log.WarnContext(ctx, "grpc: presence heartbeat failed", "room", room, "err", err)
			}
			continue
		case ev, ok = <-sub.Events():
		}
		if !ok {
			return streamEnded(sub)
		}
		out, ok := roomEvent(ev, p.UserID)
		if !ok {
			continue
		}
		if m := out.GetMessage(); m != nil {
			if seen[m.Id] {
				continue
			}
			if len(seen) > 0 {
				clear(seen) // past the join: nothing later can be in the history
			}
		}
		out.Room = room
		if err := ss.Send(out); err != nil {
			return err
		}
	}
}

// roomEvent is the stream message of a room event; false for events the caller does not
// get (their own typing, types this API does not know).
func roomEvent(ev plaza.Event, self string) (*plazav1.StreamRoomResponse, bool) {
	switch ev.Type {
	case chat.EventMessage:
		var m chat.Message
		if json.Unmarshal(ev.Data, &m) != nil {
			return nil, false
		}
		return &plazav1.StreamRoomResponse{Event: &plazav1.StreamRoomResponse_Message{Message: messagePB(m)}}, true
	case chat.EventMessageDeleted:
		var d chat.Deleted
		if json.Unmarshal(ev.Data, &d) != nil {
			return nil, false
		}
		return &plazav1.StreamRoomResponse{Event: &plazav1.StreamRoomResponse_MessageDeleted{MessageDeleted: &plazav1.MessageDeleted{Id: d.ID}}}, true
	case chat.EventPresence:
		var pr chat.Presence
		if json.Unmarshal(ev.Data, &pr) != nil {
			return nil, false
		}
		return &plazav1.StreamRoomResponse{Event: &plazav1.StreamRoomResponse_Presence{Presence: &plazav1.Presence{Members: membersPB(pr.Members)}}}, true
	case chat.EventTyping:
		var t chat.Typing
		if json.Unmarshal(ev.Data, &t) != nil || t.UserID == self {
			return nil, false
		}
		return &plazav1.StreamRoomResponse{Event: &plazav1.StreamRoomResponse_Typing{Typing: &plazav1.Typing{UserId: t.UserID, UserName: t.UserName}}}, true
	}
	return nil, false
}
