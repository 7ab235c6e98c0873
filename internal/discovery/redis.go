package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is where instances register in Redis.
const DefaultRedisPrefix = "plaza:discovery:"

// Redis keeps the registrations in Redis: a hash of instance ID → JSON and a sorted set
// of instance ID → expiry. Expiry is computed and compared on Redis's clock (TIME inside
// the scripts), so instances and gateways whose clocks disagree still agree on who is
// live. A change of membership (a new instance, a deregistration) is published on a
// channel so gateways refresh at once.
type Redis struct {
	client                    redis.UniversalClient
	instances, expiry, events string
	log                       *slog.Logger
}

// NewRedis uses client under prefix (DefaultRedisPrefix when empty).
func NewRedis(client redis.UniversalClient, prefix string, log *slog.Logger) *Redis {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{client: client, instances: prefix + "instances", expiry: prefix + "expiry", events: prefix + "changes", log: log}
}

// registerScript renews (or adds) an instance; it returns 1 when the instance was not
// live before. KEYS: expiry, instances. ARGV: id, json, ttl in ms.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if old == false or tonumber(old) <= now then return 1 end
return 0
`)

// listScript drops lapsed registrations and returns the live ones with their expiry:
// id, json, expiry (ms), … KEYS: expiry, instances.
var listScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  local v = redis.call('HGET', KEYS[2], live[i])
  if v then
    table.insert(out, v)
    table.insert(out, live[i + 1])
  end
end
return out
`)

// Register implements Registrar.
func (r *Redis) Register(ctx context.Context, inst Instance, ttl time.Duration) error {
	inst.ExpiresAt = time.Time{}
	b, err := json.Marshal(inst)
	if err != nil {
		return err
	}
	fresh, err := registerScript.Run(ctx, r.client, []string{r.expiry, r.instances}, inst.ID, b, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("discovery: register %s: %w", inst.ID, err)
	}
	if fresh == 1 {
		r.announce(ctx)
	}
	return nil
}

// Deregister implements Registrar.
func (r *Redis) Deregister(ctx context.Context, id string) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.expiry, id)
		p.HDel(ctx, r.instances, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("discovery: deregister %s: %w", id, err)
	}
	r.announce(ctx)
	return nil
}

// announce tells watchers that membership changed. Losing it costs a watcher one poll
// interval, so a failure is only logged.
func (r *Redis) announce(ctx context.Context) {
	if err := r.client.Publish(ctx, r.events, "changed").Err(); err != nil {
		r.log.Warn("discovery: announcing a membership change failed; gateways see it at their next poll", "err", err)
	}
}

// Instances implements Registry.
func (r *Redis) Instances(ctx context.Context) ([]Instance, error) {
	vals, err := listScript.Run(ctx, r.client, []string{r.expiry, r.instances}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("discovery: list instances: %w", err)
	}
	is := make([]Instance, 0, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		var inst Instance
		if err := json.Unmarshal([]byte(vals[i]), &inst); err != nil {
			// Written by another version, or by hand: skipping it is safer than failing the
			// whole list and leaving every gateway on stale pools.
			r.log.Warn("discovery: unreadable registration skipped", "err", err)
			continue
		}
		if ms, err := strconv.ParseFloat(vals[i+1], 64); err == nil {
			inst.ExpiresAt = time.UnixMilli(int64(ms)).UTC()
		}
		is = append(is, inst)
	}
	return sortByID(is), nil
}

// Watchers is how many readers watch for changes right now (gateways).
func (r *Redis) Watchers(ctx context.Context) (int64, error) {
	n, err := r.client.PubSubNumSub(ctx, r.events).Result()
	if err != nil {
		return 0, err
	}
	return n[r.events], nil
}

// Watch implements Watcher over Redis pub/sub.
func (r *Redis) Watch(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	sub := r.client.Subscribe(ctx, r.events)
	go func() {
		defer close(out)
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default: // a refresh is pending already
				}
			}
		}
	}()
	return out
}
