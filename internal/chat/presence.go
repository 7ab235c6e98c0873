package chat

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// PresenceStore records which connections are in which rooms, where every instance can
// see it. An entry lives for a TTL and is kept alive by calling Add again (a heartbeat),
// so the members of an instance that dies without leaving disappear by themselves.
// PresenceMemory (one instance) and PresenceRedis (many) share one contract test.
type PresenceStore interface {
	// Add records (or refreshes) connection conn of member m in room.
	Add(ctx context.Context, room, conn string, m Member) error
	// Remove forgets connection conn in room; an unknown one is not an error.
	Remove(ctx context.Context, room, conn string) error
	// Members returns the distinct users with a live connection in room, ordered by name
	// then ID.
	Members(ctx context.Context, room string) ([]Member, error)
}

// DefaultPresenceTTL is how long a presence entry lives without a heartbeat.
const DefaultPresenceTTL = 30 * time.Second

// presenceEntry is one connection's presence: who, and until when.
type presenceEntry struct {
	Member
	Expires int64 `json:"exp"` // unix milliseconds
}

// distinct turns live entries into the member list: one per user, sorted.
func distinct(entries []presenceEntry, now time.Time) []Member {
	seen := map[string]bool{}
	out := []Member{}
	for _, e := range entries {
		if e.Expires <= now.UnixMilli() || seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		out = append(out, e.Member)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// PresenceMemory is a PresenceStore for one instance.
type PresenceMemory struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	rooms map[string]map[string]presenceEntry
}

// NewPresenceMemory returns an in-process presence store; ttl <= 0 means
// DefaultPresenceTTL, a nil now means time.Now.
func NewPresenceMemory(ttl time.Duration, now func() time.Time) *PresenceMemory {
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	if now == nil {
		now = time.Now
	}
	return &PresenceMemory{ttl: ttl, now: now, rooms: map[string]map[string]presenceEntry{}}
}

func (p *PresenceMemory) Add(_ context.Context, room, conn string, m Member) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rooms[room] == nil {
		p.rooms[room] = map[string]presenceEntry{}
	}
	p.rooms[room][conn] = presenceEntry{Member: m, Expires: p.now().Add(p.ttl).UnixMilli()}
	return nil
}

func (p *PresenceMemory) Remove(_ context.Context, room, conn string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.rooms[room], conn)
	if len(p.rooms[room]) == 0 {
		delete(p.rooms, room)
	}
	return nil
}

func (p *PresenceMemory) Members(_ context.Context, room string) ([]Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var entries []presenceEntry
	for conn, e := range p.rooms[room] {
		if e.Expires <= now.UnixMilli() {
			delete(p.rooms[room], conn)
			continue
		}
		entries = append(entries, e)
	}
	return distinct(entries, now), nil
}
