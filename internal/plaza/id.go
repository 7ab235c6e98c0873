package plaza

import "github.com/google/uuid"

// NewID returns a new opaque, time-ordered identifier (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ValidID reports whether id has the form of an identifier NewID makes: the canonical
// 36-character UUID text. IDs arriving in cursors and paths are checked with it before they
// reach a query.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}
