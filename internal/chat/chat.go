// Package chat holds the chat domain and its service: rooms, messages, who may do what,
// membership and presence. Transports (the WebSocket hub in internal/realtime, the REST
// routes in internal/httpapi) decode, call the Service and encode; every rule lives here.
//
// A room is a stream on the bus (Stream): a message is stored, then published there, and
// every instance fans it out to its members. History lives in the store, so a client that
// rejoins with the last message ID it saw gets exactly what it missed.
package chat

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"plaza/internal/plaza"
)

// General is the room that always exists (the migration creates it).
const General = "general"

// Limits of the chat fields.
const (
	MaxTextLen     = 2000 // characters (runes)
	MaxRoomNameLen = 100
	MaxClientIDLen = 64
	// HistorySize is how many messages a join without since delivers.
	HistorySize = 50
	// MaxRecover bounds a recovery: a client that missed more gets the latest
	// HistorySize and recovered=false, as if its since were too old.
	MaxRecover = 1000
)

// Room is a chat room. Members is the live count of distinct users in it across every
// instance; it is filled in by listings only.
type Room struct {
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Members   int       `json:"members"`
}

// Message is one chat message as every transport shows it. ClientID is the sender's own
// tag, echoed so it can match the echo to what it sent.
type Message struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	UserID   string    `json:"user_id"`
	UserName string    `json:"user_name"`
	Text     string    `json:"text"`
	SentAt   time.Time `json:"sent_at"`
	ClientID string    `json:"client_id,omitempty"`
}

// Member is a user present in a room.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

var slugForm = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Validate checks what a client sets when creating a room.
func (r Room) Validate() error {
	var p plaza.Problems
	if !slugForm.MatchString(r.Slug) {
		p.Add("slug", "must be 1 to 40 lower-case letters, digits or hyphens, starting with a letter or digit")
	}
	if n := utf8.RuneCountInString(r.Name); strings.TrimSpace(r.Name) == "" || n > MaxRoomNameLen {
		p.Add("name", "must be 1 to %d characters", MaxRoomNameLen)
	}
	return p.Err()
}

// validateText checks a message's text and client ID.
func validateText(text, clientID string) error {
	var p plaza.Problems
	switch n := utf8.RuneCountInString(text); {
	case plaza.TextProblem(text, true) != "":
		p.Add("text", "%s", plaza.TextProblem(text, true))
	case strings.TrimSpace(text) == "" || n > MaxTextLen:
		p.Add("text", "must be 1 to %d characters, not only spaces", MaxTextLen)
	}
	if len(clientID) > MaxClientIDLen {
		p.Add("client_id", "must be at most %d bytes", MaxClientIDLen)
	}
	return p.Err()
}

// Event types, published on a room's Stream.
const (
	EventMessage        = "chat.message"         // data: Message
	EventMessageDeleted = "chat.message_deleted" // data: Deleted
	EventPresence       = "chat.presence"        // data: Presence
	EventTyping         = "chat.typing"          // data: Typing
)

// Stream is the bus stream of a room's events.
func Stream(room string) string { return "chat." + room }

// Deleted is the data of EventMessageDeleted.
type Deleted struct {
	Room string `json:"room"`
	ID   string `json:"id"`
}

// Presence is the data of EventPresence: who is in the room now.
type Presence struct {
	Room    string   `json:"room"`
	Members []Member `json:"members"`
}

// Typing is the data of EventTyping.
type Typing struct {
	Room     string `json:"room"`
	UserID   string `json:"user_id"`
	UserName string `json:"user_name"`
}
