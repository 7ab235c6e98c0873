package plaza

import (
	"encoding/json"
	"time"
)

// Event is a domain event as it rides on the bus (docs/contracts.md, "Domain events on the bus").
// ID is assigned by the bus on publish and is ordered within a stream, so a subscriber can
// resume after the last ID it saw.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	ActorID    string          `json:"actor_id,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// NewEvent builds an event of type typ with data encoded as JSON.
func NewEvent(typ, actorID string, data any, now time.Time) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{Type: typ, OccurredAt: now.UTC(), ActorID: actorID, Data: raw}, nil
}

// Streams on the bus. Each domain publishes on its own stream.
const (
	StreamUsers   = "users"
	StreamCatalog = "catalog"
)
