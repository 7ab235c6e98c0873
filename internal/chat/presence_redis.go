package chat

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/plaza"
)

// PresenceRedis is a PresenceStore shared by every instance on one Redis: a hash per room,
// connection ID → member and expiry. Expired fields are dropped by whoever reads them; the
// hash itself expires a TTL after its last write, so an abandoned room leaves nothing.
type PresenceRedis struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// NewPresenceRedis returns a Redis presence store with keys under prefix (default
// "plaza:presence:"); ttl and now default like NewPresenceMemory's.
func NewPresenceRedis(client redis.UniversalClient, prefix string, ttl time.Duration, now func() time.Time) *PresenceRedis {
	if prefix == "" {
		prefix = "plaza:presence:"
	}
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	if now == nil {
		now = time.Now
	}
	return &PresenceRedis{client: client, prefix: prefix, ttl: ttl, now: now}
}

func (p *PresenceRedis) Add(ctx context.Context, room, conn string, m Member) error {
	raw, err := json.Marshal(presenceEntry{Member: m, Expires: p.now().Add(p.ttl).UnixMilli()})
	if err != nil {
		return plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	key := p.prefix + room
	_, err = p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, key, conn, raw)
		// The key outlives its newest entry by one TTL: enough for readers to see it
		// expire, and nothing stays behind.
		pipe.PExpire(ctx, key, 2*p.ttl)
		return nil
	})
	return presenceErr(err)
}

func (p *PresenceRedis) Remove(ctx context.Context, room, conn string) error {
	return presenceErr(p.client.HDel(ctx, p.prefix+room, conn).Err())
}

func (p *PresenceRedis) Members(ctx context.Context, room string) ([]Member, error) {
	key := p.prefix + room
	all, err := p.client.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, presenceErr(err)
	}
	now := p.now()
	var entries []presenceEntry
	var expired []string
	for conn, raw := range all {
		var e presenceEntry
		if json.Unmarshal([]byte(raw), &e) != nil || e.Expires <= now.UnixMilli() {
			expired = append(expired, conn)
			continue
		}
		entries = append(entries, e)
	}
	if len(expired) > 0 {
		// A heartbeat racing this may have just renewed one of them; it is re-added by
		// the next heartbeat, a third of a TTL later.
		_ = p.client.HDel(ctx, key, expired...).Err()
	}
	return distinct(entries, now), nil
}

// presenceErr reports a Redis failure as presence being unavailable. (Redis rejecting a
// command would be our bug, but these few commands cannot be malformed at run time.)
func presenceErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return plaza.Wrap(plaza.EUnavailable, err, "presence is unavailable; retry later")
}
