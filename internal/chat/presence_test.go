package chat_test

import (
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/chat"
	"plaza/internal/redistest"
)

// clock is a settable time for presence expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestPresenceMemory(t *testing.T) {
	t.Parallel()
	presenceContract(t, func(t *testing.T, ttl time.Duration, now func() time.Time) chat.PresenceStore {
		return chat.NewPresenceMemory(ttl, now)
	})
}

func TestPresenceRedis(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	presenceContract(t, func(t *testing.T, ttl time.Duration, now func() time.Time) chat.PresenceStore {
		return chat.NewPresenceRedis(client, "test:presence:"+strings.ToLower(rand.Text())+":", ttl, now)
	})
}

func presenceContract(t *testing.T, open func(t *testing.T, ttl time.Duration, now func() time.Time) chat.PresenceStore) {
	ann, bob := chat.Member{ID: "u-ann", Name: "Ann"}, chat.Member{ID: "u-bob", Name: "Bob"}
	members := func(t *testing.T, p chat.PresenceStore, room string) string {
		t.Helper()
		ms, err := p.Members(t.Context(), room)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		return strings.Join(names, ",")
	}
	add := func(t *testing.T, p chat.PresenceStore, room, conn string, m chat.Member) {
		t.Helper()
		if err := p.Add(t.Context(), room, conn, m); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("members are distinct users, sorted, per room", func(t *testing.T) {
		t.Parallel()
		p := open(t, time.Minute, nil)
		add(t, p, "r", "c1", bob)
		add(t, p, "r", "c2", ann)
		add(t, p, "r", "c3", ann) // a second tab
		add(t, p, "other", "c4", bob)
		if got := members(t, p, "r"); got != "Ann,Bob" {
			t.Fatalf("members %q", got)
		}
		if err := p.Remove(t.Context(), "r", "c2"); err != nil {
			t.Fatal(err)
		}
		if got := members(t, p, "r"); got != "Ann,Bob" {
			t.Fatalf("after one of Ann's two connections left: %q", got)
		}
		p.Remove(t.Context(), "r", "c3")
		p.Remove(t.Context(), "r", "unknown")
		if got := members(t, p, "r"); got != "Bob" {
			t.Fatalf("after Ann left: %q", got)
		}
		if got := members(t, p, "empty"); got != "" {
			t.Fatalf("empty room: %q", got)
		}
	})

	t.Run("entries expire without a heartbeat", func(t *testing.T) {
		t.Parallel()
		c := &clock{now: time.Now()}
		p := open(t, 30*time.Second, c.Now)
		add(t, p, "r", "c1", ann)
		add(t, p, "r", "c2", bob)
		c.Advance(20 * time.Second)
		add(t, p, "r", "c2", bob) // Bob's instance is alive and renews
		c.Advance(20 * time.Second)
		if got := members(t, p, "r"); got != "Bob" {
			t.Fatalf("after Ann's TTL: %q", got)
		}
	})
}
