package plaza

import (
	"encoding/json"
	"time"
)

// Event is a domain event as it rides on the bus (docs/contracts.md, "Domain events on the bus").
// ID is assigned by the bus on publish and is ordered within a stream, so a subscriber can
// resume after the last ID it saw.
type Event struct {
	ID string `json:"id"`
	// Key is the event's own identity, given when it is written (to the outbox, with the
	// change it describes): the same on every delivery. A relay publishes at least once, so
	// one event may be published twice, at two IDs; subscribers drop a Key they have seen.
	Key        string          `json:"key,omitempty"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	ActorID    string          `json:"actor_id,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// NewEvent builds an event of type typ with data encoded as JSON and a new Key.
func NewEvent(typ, actorID string, data any, now time.Time) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{Key: NewID(), Type: typ, OccurredAt: now.UTC(), ActorID: actorID, Data: raw}, nil
}

// Outgoing is an event bound for a bus stream, handed to a store write so that it is
// stored in the same transaction as the change it describes (the outbox) and published
// after the commit, at least once, in order per stream.
type Outgoing struct {
	Stream string
	Event  Event
}

// Streams on the bus. Each domain publishes on its own stream.
const (
	StreamUsers   = "users"
	StreamCatalog = "catalog"
)
