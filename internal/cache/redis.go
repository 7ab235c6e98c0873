package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/redisx"
)

// NewRedis returns a backend on Redis, every key put behind prefix (e.g. "plaza:cache:").
// The caller owns client, which the bus and rate limits may share: Close leaves it open.
func NewRedis(client redis.UniversalClient, prefix string) Backend {
	r := &redisBackend{client: client, prefix: prefix}
	r.gets.run = r.pipelineGet
	return r
}

type redisBackend struct {
	client redis.UniversalClient
	prefix string
	gets   getBatches // concurrent GetMany calls share pipelines
}

func (r *redisBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	val, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, redisx.Err(err, "cache")
	}
	return val, true, nil
}

// GetMany reads keys in a pipeline shared with the calls made at the same time
// (getBatches).
func (r *redisBackend) GetMany(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	return r.gets.getMany(ctx, keys)
}

// pipelineGet reads key by key in one pipeline rather than one MGET, which a Redis
// Cluster refuses when the keys hash to different slots.
func (r *redisBackend) pipelineGet(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, r.prefix+k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, redisx.Err(err, "cache")
	}
	vals, ok := make([][]byte, len(keys)), make([]bool, len(keys))
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, nil, redisx.Err(err, "cache")
		default:
			vals[i], ok[i] = b, true
		}
	}
	return vals, ok, nil
}

func (r *redisBackend) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0 // no expiry; go-redis reads -1 as KEEPTTL
	}
	if err := r.client.Set(ctx, r.prefix+key, val, ttl).Err(); err != nil {
		return redisx.Err(err, "cache")
	}
	return nil
}

// Delete deletes key by key in one pipeline rather than one multi-key DEL, which a Redis
// Cluster refuses when the keys hash to different slots.
func (r *redisBackend) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.prefix+k)
		}
		return nil
	})
	if err != nil {
		return redisx.Err(err, "cache")
	}
	return nil
}

// deleteUnchanged deletes KEYS[1] if the SHA-1 of its value is ARGV[1] (hex), returning 1
// when it did.
var deleteUnchanged = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and redis.sha1hex(v) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// DeleteUnchanged runs deleteUnchanged for each key in one pipeline (one script per key,
// as Delete keeps to one key per command for Redis Cluster).
func (r *redisBackend) DeleteUnchanged(ctx context.Context, keys []string, digests []Digest) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = deleteUnchanged.Eval(ctx, p, []string{r.prefix + k}, hex.EncodeToString(digests[i][:]))
		}
		return nil
	})
	if err != nil {
		return nil, redisx.Err(err, "cache")
	}
	var deleted []string
	for i, cmd := range cmds {
		if n, _ := cmd.Int64(); n == 1 {
			deleted = append(deleted, keys[i])
		}
	}
	return deleted, nil
}

// Incr runs INCR and PEXPIRE NX in one MULTI/EXEC: the first increment of a window sets
// its expiry, later ones leave it, and no crash in between can leave a counter that never
// expires. PEXPIRE NX needs Redis 7.
func (r *redisBackend) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	k := r.prefix + key
	var incr *redis.IntCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, k)
		if ttl > 0 {
			p.Do(ctx, "PEXPIRE", k, max(ttl.Milliseconds(), 1), "NX")
		}
		return nil
	})
	if err != nil {
		return 0, redisx.Err(err, "cache")
	}
	return incr.Val(), nil
}

func (r *redisBackend) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return redisx.Err(err, "cache")
	}
	return nil
}

func (r *redisBackend) Close() error { return nil }

const redisURLForm = "redis://[[user]:password@]host[:port][/db] or rediss://… for TLS"

// ParseRedisURL parses a Redis URL into client options. Its errors say what is wrong and
// the expected form but never repeat the password; the caller names where the URL came
// from (REDIS_URL, a test's variable). The options enable ContextTimeoutEnabled,
// so a caller's deadline (the cache's per-call timeout) bounds a hung Redis, and retry
// little, so a dead one fails fast.
func ParseRedisURL(raw string) (*redis.Options, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("empty; expected %s", redisURLForm)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole input, password included: say only what is wrong.
		return nil, fmt.Errorf("not a valid URL; expected %s", redisURLForm)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q; expected %s", u.Scheme, redisURLForm)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// Only the host is repeated: the password may sit in the user info or, misplaced,
		// anywhere else in the URL.
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, fmt.Errorf("host %q: %s; expected %s", u.Host, msg, redisURLForm)
	}
	opts.ContextTimeoutEnabled = true
	// A dead Redis must show at once, not after go-redis's default 3 retries of 5 dials
	// each (about two seconds a call): one retry covers a pooled connection the server
	// closed, one dial attempt a refused connection. The circuit breaker (redisx) then
	// keeps later calls off the network.
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	return opts, nil
}
