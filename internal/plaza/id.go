package plaza

import "github.com/google/uuid"

// NewID returns a new opaque, time-ordered identifier (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
