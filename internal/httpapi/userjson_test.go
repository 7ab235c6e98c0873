package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/users"
)

// TestUserBodiesNeverServeAnotherUser: a kept body is what encoding the user gives, and a
// user that differs in anything (a new version, a renamed one at the same version, the
// email hidden from another caller) gets its own body, not the kept one.
func TestUserBodiesNeverServeAnotherUser(t *testing.T) {
	t.Parallel()
	c := newUserBodies(2)
	at := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	u := users.User{ID: "u1", Name: "Ann <admin>", Email: "ann@example.com", Role: plaza.RoleUser, Version: 1, CreatedAt: at, UpdatedAt: at}
	renamed := u
	renamed.Name = "Ann B"
	bumped := renamed
	bumped.Version = 2
	hidden := u
	hidden.Email = ""
	for i, v := range []users.User{u, u, renamed, bumped, hidden, u, {ID: "u2", Name: "Bo"}, {ID: "u3", Name: "Cy"}, u} {
		got, err := c.body(v)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("step %d: body %s, want %s", i, got, want.Bytes())
		}
	}
	if len(c.entries) > 2 {
		t.Fatalf("%d entries kept, bound 2", len(c.entries))
	}
}
