package httpapi

import (
	"bytes"
	"encoding/json"
	"sync"

	"plaza/internal/users"
)

// userBodies keeps the encoded body of the users last written, by ID. A user changes
// rarely and GET /api/users/me reads the same one on every call, so a body is encoded
// once per version of the user. An entry serves only the very users.User it was encoded
// from (the whole struct compared: version, fields, whether the email is shown), so it
// can never answer a changed or differently visible user.
type userBodies struct {
	max int

	mu      sync.Mutex
	entries map[string]userBody
}

type userBody struct {
	user users.User
	body []byte
}

// maxUserBodies bounds the entries: about 300 bytes each.
const maxUserBodies = 10_000

func newUserBodies(max int) *userBodies {
	return &userBodies{max: max, entries: make(map[string]userBody)}
}

// body returns u as encode would write it (JSON and a newline).
func (c *userBodies) body(u users.User) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[u.ID]
	c.mu.Unlock()
	if ok && e.user == u {
		return e.body, nil
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(u); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		clear(c.entries) // rare: more distinct users than max read since the last clear
	}
	c.entries[u.ID] = userBody{user: u, body: buf.Bytes()}
	c.mu.Unlock()
	return buf.Bytes(), nil
}
