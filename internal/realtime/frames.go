package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// Client frames (JSON text messages), as issue 13 names them.
const (
	frameJoin    = "join"    // {room, since?}
	frameLeave   = "leave"   // {room}
	frameMessage = "message" // {room, text, client_id?}
	frameTyping  = "typing"  // {room}
	framePing    = "ping"    // {}
)

// inFrame is a decoded client frame. Only the fields of its type may be present.
type inFrame struct {
	Type     string `json:"type"`
	Room     string `json:"room,omitempty"`
	Since    string `json:"since,omitempty"`
	Text     string `json:"text,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// decodeFrame reads one client frame strictly: malformed JSON, trailing data, an unknown
// type or field, a field of another type, or a missing room is a bad_request error.
func decodeFrame(b []byte) (inFrame, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return inFrame{}, plaza.Errorf(plaza.EBadRequest, "a frame must be one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return inFrame{}, plaza.Errorf(plaza.EBadRequest, "a frame must be one JSON object")
	}
	var f inFrame
	fields := map[string]*string{"type": &f.Type, "room": &f.Room, "since": &f.Since, "text": &f.Text, "client_id": &f.ClientID}
	for k, v := range raw {
		dst, ok := fields[k]
		if !ok {
			return inFrame{}, plaza.Errorf(plaza.EBadRequest, "unknown field %q", k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return inFrame{}, plaza.Errorf(plaza.EBadRequest, "field %q must be a string", k)
		}
	}
	allowed := map[string][]string{
		frameJoin:    {"type", "room", "since"},
		frameLeave:   {"type", "room"},
		frameMessage: {"type", "room", "text", "client_id"},
		frameTyping:  {"type", "room"},
		framePing:    {"type"},
	}
	want, ok := allowed[f.Type]
	if !ok {
		return inFrame{}, plaza.Errorf(plaza.EBadRequest, "unknown frame type %q", f.Type)
	}
	for k := range raw {
		if !contains(want, k) {
			return inFrame{}, plaza.Errorf(plaza.EBadRequest, "a %s frame has no field %q", f.Type, k)
		}
	}
	if f.Type != framePing && f.Room == "" {
		return inFrame{}, plaza.Errorf(plaza.EBadRequest, "a %s frame needs a room", f.Type)
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Server frames.
type (
	pongFrame struct {
		Type string `json:"type"`
	}
	joinedFrame struct {
		Type string `json:"type"`
		chat.Joined
	}
	messageFrame struct {
		Type    string       `json:"type"`
		Room    string       `json:"room"`
		Message chat.Message `json:"message"`
	}
	deletedFrame struct {
		Type string `json:"type"`
		chat.Deleted
	}
	presenceFrame struct {
		Type string `json:"type"`
		chat.Presence
	}
	typingFrame struct {
		Type string `json:"type"`
		chat.Typing
	}
	errorFrame struct {
		Type    string          `json:"type"`
		Code    plaza.ErrorCode `json:"code"`
		Message string          `json:"message"`
		Ref     string          `json:"ref,omitempty"`
	}
)

// mustEncode encodes a server frame; they are all plain structs, so failing is a bug.
func mustEncode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("realtime: frame does not encode: " + err.Error())
	}
	return b
}

// roomFrame turns a room event from the bus into the frame members get, encoded once
// for all of them. ok is false for events that are not for clients.
func roomFrame(ev plaza.Event) (f []byte, msgID, typist string, ok bool) {
	switch ev.Type {
	case chat.EventMessage:
		var m chat.Message
		if json.Unmarshal(ev.Data, &m) != nil {
			return nil, "", "", false
		}
		return mustEncode(messageFrame{Type: "message", Room: m.Room, Message: m}), m.ID, "", true
	case chat.EventMessageDeleted:
		var d chat.Deleted
		if json.Unmarshal(ev.Data, &d) != nil {
			return nil, "", "", false
		}
		return mustEncode(deletedFrame{Type: "message_deleted", Deleted: d}), "", "", true
	case chat.EventPresence:
		var p chat.Presence
		if json.Unmarshal(ev.Data, &p) != nil {
			return nil, "", "", false
		}
		return mustEncode(presenceFrame{Type: "presence", Presence: p}), "", "", true
	case chat.EventTyping:
		var t chat.Typing
		if json.Unmarshal(ev.Data, &t) != nil {
			return nil, "", "", false
		}
		return mustEncode(typingFrame{Type: "typing", Typing: t}), "", t.UserID, true
	}
	return nil, "", "", false
}

// errorFrameOf is the error frame for err: the client-safe message only, internal details
// never (they are logged by the caller).
func errorFrameOf(err error, ref string) []byte {
	e := plaza.AsError(err)
	msg := e.Message
	if e.Code == plaza.EInternal {
		msg = "an internal error occurred"
	}
	return mustEncode(errorFrame{Type: "error", Code: e.Code, Message: msg, Ref: ref})
}
