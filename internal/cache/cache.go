// Package cache is the look-aside cache the services use: a Backend (memory or Redis,
// side by side, one contract) behind a Cache that never fails a request because the
// cache is down, collapses concurrent misses of one key into one load, and, with
// several instances on one Redis, keeps an optional in-process tier coherent through
// invalidations on the bus and, when the bus cannot carry them, on a second channel
// (Notifications: PostgreSQL's LISTEN/NOTIFY).
package cache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"plaza/internal/bus"
	"plaza/internal/plaza"
	"plaza/internal/prom"
)

// Backend stores bytes under string keys with a TTL. A ttl <= 0 means no expiry.
type Backend interface {
	// Get returns the value of key and whether it was there. The slice may be the
	// backend's own: callers read it and never write to it.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// GetMany returns the values of keys in one round trip: vals[i] and ok[i] are keys[i]'s.
	GetMany(ctx context.Context, keys []string) (vals [][]byte, ok []bool, err error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Delete(ctx context.Context, keys ...string) error
	// DeleteUnchanged deletes each of keys whose value is still the one digests[i] names
	// (DigestOf), and returns the keys it deleted: a value stored since stays.
	DeleteUnchanged(ctx context.Context, keys []string, digests []Digest) ([]string, error)
	// Incr atomically adds 1 to key's counter and returns the new value; the TTL is set
	// when the counter is created (fixed window) and not extended.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	Ping(ctx context.Context) error
	Close() error
}

// Digest names a value for DeleteUnchanged: its SHA-1, which Redis's scripts can compute.
type Digest [sha1.Size]byte

// DigestOf returns val's Digest.
func DigestOf(val []byte) Digest { return sha1.Sum(val) }

// InvalidateStream is the bus stream on which Delete announces deleted keys to every
// instance. Keys ride the bus in clear: keep secrets and emails out of cache keys.
const InvalidateStream = "cache.invalidate"

// invalidateType is the event type on InvalidateStream; its data is invalidation.
const invalidateType = "cache.invalidate"

// invalidation is what an announcement carries, on the bus and (from this version on)
// through the notifications alike.
type invalidation struct {
	Keys []string `json:"keys"`
	// Origin names the Cache that deleted the keys, so it can tell its own announcement
	// coming back from another instance's (absent from older versions: another's).
	Origin string `json:"origin,omitempty"`
	// Seqs[i] is the number Origin gave the deletion of Keys[i] (Cache.delSeq). Both
	// channels carry the same numbers, so an instance applies each deletion once: the
	// second copy of one, arriving after a read had loaded the key again, would
	// otherwise delete that fresh fill from both tiers (see Cache.firstArrivals). Absent
	// from older versions: every copy is applied.
	Seqs []uint64 `json:"seqs,omitempty"`
	// Again marks the deletion of a fill that lost the race with another instance's
	// Delete (see Cache.deleteAgain): receivers drop their local copies, which may have
	// been read from it, and do no more.
	Again bool `json:"again,omitempty"`
}

// Notifications is a second way for invalidations to reach every instance, apart from the
// bus and what it depends on: with PostgreSQL and Redis, LISTEN/NOTIFY on PostgreSQL
// (store.Notifications) keeps the local tier coherent, and so in use, while Redis is down.
type Notifications interface {
	// Notify sends payload (at most MaxNotifyPayload bytes) to every listener, this
	// instance's included.
	Notify(ctx context.Context, payload string) error
	// Listen connects, calls listening once every later Notify will reach receive, then
	// calls receive with each payload until ctx ends (nil) or the connection is lost (the
	// error). Payloads sent while nobody listens are lost: there is no replay.
	Listen(ctx context.Context, listening func(), receive func(payload string)) error
}

// MaxNotifyPayload bounds one Notify's payload (PostgreSQL refuses 8000 bytes and more):
// Delete splits its keys over several notifications.
const MaxNotifyPayload = 7999

// forgetAll is the payload that drops every key: sent for a key too long for a payload.
const forgetAll = "*"

// Defaults of Options.
const (
	DefaultLocalTTL = 5 * time.Second
	DefaultTimeout  = 500 * time.Millisecond
)

// Options configure New. The zero value works: no local tier, no bus, no metrics.
type Options struct {
	Logger     *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // may be nil
	// Bus, when set, makes Delete publish an invalidation that every instance's Run
	// applies to its local tier.
	Bus bus.Bus
	// Notifications, when set, carries the same invalidations on a second channel, so the
	// local tier stays in use while either of the two is live (see Run). Each deletion is
	// applied once, on whichever channel brings it first.
	Notifications Notifications
	// LocalSize > 0 adds an in-process tier of that many entries in front of the
	// backend, meant for a remote one. An entry lives there for min(ttl, LocalTTL).
	LocalSize int
	// LocalTTL caps how long an entry stays in the local tier (default 5s). It is the
	// bound on staleness when an invalidation is missed without the cache knowing (a Set
	// overwriting the key on another instance), and on how long an entry may outlive its
	// backend TTL, which a Get does not learn. Missed invalidations it can know about are
	// not left to it: while no invalidation source is live and caught up (the bus stream
	// after a backend failure counts as down), the local tier is bypassed and entries that
	// could have missed an invalidation are disowned (see Run).
	LocalTTL time.Duration
	// Timeout bounds each backend call, so a hung backend costs a request at most this
	// long before it counts as a miss (default 500ms). It takes effect on Redis with
	// ContextTimeoutEnabled, which ParseRedisURL sets.
	Timeout time.Duration
}

// Cache is safe for concurrent use.
type Cache struct {
	b        Backend
	local    *ttlCache[localEntry] // nil without a local tier
	localTTL time.Duration
	timeout  time.Duration
	inproc   bool // the backend is in-process and cannot block: no per-call timeout
	bus      bus.Bus
	notes    Notifications // nil without a second channel
	log      *slog.Logger
	m        metrics
	flights  singleflight.Group
	lastLog  atomic.Int64 // unix nanos of the last logged backend error

	ready     chan struct{} // closed once Run listens on every source; see Ready
	readyOnce sync.Once
	waiting   atomic.Int32 // sources Run has not yet listened on
	busOnce   sync.Once    // the bus counted as listened on
	notesOnce sync.Once    // the notifications counted as listened on

	// The local tier is trusted only while one of Run's invalidation sources (the bus
	// subscription, the notifications) is live and caught up. Each source has an epoch
	// that moves on whenever it may have missed an invalidation; an entry carries, per
	// source, the epoch it was filled in (a stamp), and a Get accepts it only while one of
	// those sources is live and still in that epoch. A source that may have missed
	// something (a resubscription, the stream's reader losing Redis, a backend failure, a
	// lost LISTEN connection) thus disowns every entry at once, unless the other source
	// was live throughout.
	sub      atomic.Pointer[bus.Subscription] // Run's subscription while it has one
	busEpoch atomic.Uint64                    // the cache's own part of the bus's epoch
	notesUp  atomic.Bool                      // the notifications are being listened to
	notesEp  atomic.Uint64                    // moves on each time they are listened to again
	// pending holds the keys whose backend delete failed, each with the sequence number
	// of the Delete that last failed it (see retryLater).
	pendMu  sync.Mutex
	pending map[string]uint64
	pendSeq uint64
	// invals counts invalidations applied. A fill of the local tier is dropped when one
	// happened since its value was read from the backend or the source: the value read
	// may be the one the invalidation removed.
	invals atomic.Uint64

	// Fills of the backend (GetOrLoad storing what it loaded) must not outlive a Delete.
	// A load that began before a write committed may return the old value, and storing it
	// after the write's Delete would serve it until its TTL. deleted logs the keys of the
	// Deletes begun here and of the invalidations received from other instances; a fill
	// whose key was logged after its load began is not stored. On an in-process backend
	// the check and the store are one step under fillMu, as Delete's log and delete are.
	// On a remote backend another instance's Delete can land between this instance's
	// check and store, before its announcement arrives: recent remembers the keys filled
	// here in the last fillMemory, and an announcement for one of them deletes it from
	// the backend again (and a fill that sees its key logged while it stores deletes what
	// it stored).
	origin    string      // this Cache's name in its announcements
	noteSends noteBatches // announcements through the notifications, sent together
	// delSends joins the Deletes of a remote backend made at the same moment: one backend
	// delete and one bus announcement for them all (see Delete).
	delSends noteBatches
	fillMu   sync.Mutex
	deleted  deleteLog   // guarded by fillMu
	recent   recentFills // guarded by fillMu

	// delSeq numbers this Cache's deletions in its announcements; applied remembers the
	// deletions received, per origin and key, so that the copy on the other channel (or a
	// late one) is not applied again.
	delSeq    atomic.Uint64
	again     sync.WaitGroup // deleteAgain's goroutines
	appliedMu sync.Mutex
	applied   appliedLog // guarded by appliedMu
}

// appliedKey names a key as deleted by one origin.
type appliedKey struct{ origin, key string }

// appliedLog remembers, for each origin's key, the largest deletion number applied, in
// two generations that turn over every fillMemory or more, as recentFills does: the
// channels deliver within milliseconds of each other, and a copy arriving after both
// generations turned is applied again, which costs a reload and nothing else.
type appliedLog struct {
	cur, prev map[appliedKey]uint64
	turned    time.Time
}

// maxApplied bounds the deletions remembered; past it a deletion is applied without
// being remembered (its copy is applied too).
const maxApplied = 100_000

// first reports whether the deletion of k numbered seq is newer than every one applied,
// and remembers it if so. A deletion no newer than one applied adds nothing: that one
// was announced after its own backend delete, and its write, committed before this
// deletion was numbered, was in place before it.
func (l *appliedLog) first(k appliedKey, seq uint64, now time.Time) bool {
	if l.cur == nil || now.Sub(l.turned) >= fillMemory {
		l.prev, l.cur, l.turned = l.cur, map[appliedKey]uint64{}, now
	}
	if seq <= max(l.cur[k], l.prev[k]) {
		return false
	}
	if len(l.cur)+len(l.prev) < maxApplied {
		l.cur[k] = seq
	}
	return true
}

// deleteLog numbers deleted keys and remembers the last len(ring) of them, so that a fill
// can ask whether its key was deleted since a number it read; when the ring no longer
// reaches that far back, the answer is yes.
type deleteLog struct {
	seq  uint64
	ring [1024]deletedKey
}

type deletedKey struct {
	seq uint64
	key string
	all bool // every key
}

func (l *deleteLog) add(keys []string, all bool) {
	if all {
		l.seq++
		l.ring[l.seq%uint64(len(l.ring))] = deletedKey{seq: l.seq, all: true}
		return
	}
	for _, k := range keys {
		l.seq++
		l.ring[l.seq%uint64(len(l.ring))] = deletedKey{seq: l.seq, key: k}
	}
}

// since reports whether key may have been deleted after the log's number was seq.
func (l *deleteLog) since(seq uint64, key string) bool {
	if l.seq-seq > uint64(len(l.ring)) {
		return true
	}
	for s := seq + 1; s <= l.seq; s++ {
		if e := l.ring[s%uint64(len(l.ring))]; e.all || e.key == key {
			return true
		}
	}
	return false
}

// logDeleted logs keys (or, with all, every key) as deleted now.
func (c *Cache) logDeleted(keys []string, all bool) {
	c.fillMu.Lock()
	c.deleted.add(keys, all)
	c.fillMu.Unlock()
}

// deletedSince reports whether key was logged as deleted after the log's number was seq.
func (c *Cache) deletedSince(seq uint64, key string) bool {
	c.fillMu.Lock()
	defer c.fillMu.Unlock()
	return c.deleted.since(seq, key)
}

// fillMemory is how long a fill of a remote backend is remembered at least (at most
// twice that): longer than an announcement takes to arrive from another instance.
const fillMemory = 5 * time.Second

// maxRecentFills bounds the fills remembered; past it a fill is not stored (the next read
// loads again), which takes more than 10,000 misses a second.
const maxRecentFills = 100_000

// recentFills remembers keys in two generations that turn over every fillMemory or more:
// no sweep per fill, and a key is remembered at least fillMemory after its fill.
// Each key's Digest is the value stored, so that deleting it again spares a value stored
// since.
type recentFills struct {
	cur, prev map[string]Digest
	turned    time.Time
}

// add remembers that key was filled with the value d names, reporting false when too
// many are remembered.
func (r *recentFills) add(key string, d Digest, now time.Time) bool {
	r.turn(now)
	if len(r.cur)+len(r.prev) >= maxRecentFills {
		return false
	}
	r.cur[key] = d
	return true
}

// take forgets key, returning the digest of its fills (the latest first) it remembered.
func (r *recentFills) take(key string, now time.Time) []Digest {
	r.turn(now)
	var ds []Digest
	if d, ok := r.cur[key]; ok {
		ds = append(ds, d)
	}
	if d, ok := r.prev[key]; ok {
		ds = append(ds, d)
	}
	delete(r.cur, key)
	delete(r.prev, key)
	return ds
}

// takeAll forgets every key and returns them, a key as often as it has digests.
func (r *recentFills) takeAll() ([]string, []Digest) {
	var keys []string
	var ds []Digest
	for _, m := range []map[string]Digest{r.cur, r.prev} {
		for k, d := range m {
			keys, ds = append(keys, k), append(ds, d)
		}
		clear(m)
	}
	return keys, ds
}

func (r *recentFills) turn(now time.Time) {
	if r.cur == nil {
		r.cur, r.prev, r.turned = map[string]Digest{}, map[string]Digest{}, now
	}
	if now.Sub(r.turned) < fillMemory {
		return
	}
	// What prev held was added before the last turn, at least fillMemory ago.
	r.prev, r.cur, r.turned = r.cur, map[string]Digest{}, now
}

// localEntry is a value in the local tier and the stamp it was stored with.
type localEntry struct {
	val   []byte
	stamp stamp
}

// stamp holds, per invalidation source, the epoch it is in, 0 while it is not live and
// caught up. Epochs start at 1.
type stamp struct{ bus, notes uint64 }

func (s stamp) live() bool { return s.bus != 0 || s.notes != 0 }

// coherent reports whether an entry stamped s may be served now: one of its sources has
// been live since, in the same epoch.
func (s stamp) coherent(now stamp) bool {
	return (s.bus != 0 && s.bus == now.bus) || (s.notes != 0 && s.notes == now.notes)
}

// keep returns the part of s still coherent now.
func (s stamp) keep(now stamp) stamp {
	if s.bus != now.bus {
		s.bus = 0
	}
	if s.notes != now.notes {
		s.notes = 0
	}
	return s
}

// localEpoch returns the local tier's current stamp, and false when the tier must be
// bypassed: there is none, or no invalidation source of Run's is live and caught up.
// Without a source there is nothing to miss, and the tier is bounded by LocalTTL alone.
func (c *Cache) localEpoch() (stamp, bool) {
	if c.local == nil {
		return stamp{}, false
	}
	if c.bus == nil && c.notes == nil {
		return stamp{bus: c.busEpoch.Load()}, true
	}
	var s stamp
	if sub := c.sub.Load(); sub != nil {
		s.bus = c.busEpoch.Load()
		if sy, ok := (*sub).(bus.Synced); ok {
			synced, syncs := sy.Synced()
			s.bus += syncs
			if !synced {
				s.bus = 0
			}
		}
	}
	if c.notesUp.Load() {
		s.notes = c.notesEp.Load()
	}
	return s, s.live()
}

// fill stores val in the local tier for ttl unless the tier is bypassed, or an
// invalidation was applied since invals read inv, or no source live when epoch was read
// has stayed live since.
func (c *Cache) fill(key string, val []byte, ttl time.Duration, epoch stamp, inv uint64) {
	now, ok := c.localEpoch()
	if !ok || c.invals.Load() != inv {
		return
	}
	if epoch = epoch.keep(now); !epoch.live() {
		return
	}
	c.local.c.Set(key, localEntry{val: bytes.Clone(val), stamp: epoch}, ttl)
}

// New wraps b. Call Close when done; with a Bus, run Run for the life of the instance.
func New(b Backend, opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LocalTTL <= 0 {
		opts.LocalTTL = DefaultLocalTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	c := &Cache{
		b: b, localTTL: opts.LocalTTL, timeout: opts.Timeout, bus: opts.Bus, notes: opts.Notifications,
		log: opts.Logger, m: newMetrics(opts.Registerer), ready: make(chan struct{}),
	}
	c.busEpoch.Store(1)
	c.origin = plaza.NewID()
	c.noteSends.send = c.notify
	c.delSends.send = c.deleteAndAnnounce
	_, c.inproc = b.(*memory)
	if opts.LocalSize > 0 {
		c.local = newTTLCache[localEntry](opts.LocalSize)
	}
	return c
}

// Get returns key's value. A backend error counts as a miss: it is logged and counted,
// and the caller goes on to the source of truth. The value may be shared with the cache
// (no copy per hit): read it, never write to it.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool) {
	val, tier, ok := c.get(ctx, key)
	if ok {
		c.m.hit(tier)
		return val, true
	}
	prom.Inc(c.m.misses)
	return nil, false
}

// GetMany is Get for several keys: those the local tier holds are answered there, the
// rest by the backend in one round trip. vals[i] and ok[i] are keys[i]'s; a backend error
// makes every key the local tier did not hold a miss, as in Get, and its values may be
// shared as Get's are.
func (c *Cache) GetMany(ctx context.Context, keys ...string) (vals [][]byte, ok []bool) {
	vals, ok = make([][]byte, len(keys)), make([]bool, len(keys))
	if c.inproc {
		// No round trips to save, and no local tier in front of an in-process backend.
		for i, key := range keys {
			vals[i], ok[i] = c.Get(ctx, key)
		}
		return vals, ok
	}
	epoch, useLocal := c.localEpoch()
	rest := make([]string, 0, len(keys)) // the keys the backend is asked for
	at := make([]int, 0, len(keys))      // and their places in keys
	for i, key := range keys {
		if useLocal {
			if item := c.local.c.Get(key); item != nil && item.Value().stamp.coherent(epoch) {
				vals[i], ok[i] = slices.Clip(item.Value().val), true
				c.m.hit("local")
				continue
			}
		}
		rest, at = append(rest, key), append(at, i)
	}
	if len(rest) == 0 {
		return vals, ok
	}
	inv := c.invals.Load()
	var got [][]byte
	var found []bool
	if err := c.call(ctx, "get", func(ctx context.Context) (err error) {
		got, found, err = c.b.GetMany(ctx, rest)
		return err
	}); err != nil {
		found = make([]bool, len(rest))
	}
	for j, i := range at {
		if !found[j] {
			prom.Inc(c.m.misses)
			continue
		}
		vals[i], ok[i] = got[j], true
		c.m.hit("backend")
		if useLocal {
			c.fill(rest[j], got[j], c.localTTL, epoch, inv)
		}
	}
	return vals, ok
}

// get looks in the local tier, then the backend, and tells where it found key.
func (c *Cache) get(ctx context.Context, key string) ([]byte, string, bool) {
	epoch, useLocal := c.localEpoch()
	if useLocal {
		if item := c.local.c.Get(key); item != nil && item.Value().stamp.coherent(epoch) {
			return slices.Clip(item.Value().val), "local", true
		}
	}
	inv := c.invals.Load()
	var val []byte
	var ok bool
	if err := c.call(ctx, "get", func(ctx context.Context) (err error) {
		val, ok, err = c.b.Get(ctx, key)
		return err
	}); err != nil || !ok {
		return nil, "", false
	}
	if useLocal {
		c.fill(key, val, c.localTTL, epoch, inv)
	}
	return val, "backend", true
}

// call runs one backend operation under the per-call timeout. Its failure is counted
// and logged unless it failed because the caller gave up.
func (c *Cache) call(ctx context.Context, op string, fn func(context.Context) error) error {
	if c.inproc {
		// A timer per call is most of the cost of an in-process hit, and a map lookup
		// cannot hang.
		return fn(ctx)
	}
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := fn(tctx)
	if err != nil && ctx.Err() == nil {
		c.backendError(ctx, op, err)
	}
	return err
}

// Set stores val under key for ttl (<= 0: no expiry). Errors are logged and counted, and
// returned for callers that must know the value was stored (a revocation); a content cache
// may ignore them.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	epoch, _ := c.localEpoch()
	return c.set(ctx, key, val, ttl, epoch, c.invals.Load())
}

// set is Set for a value read when the local tier's stamp was epoch and invals was inv.
// The local tier is filled even when the backend failed: the value is as fresh, and fill
// keeps it only while a source that was live when it was read still is (a backend failure
// takes the bus out of the stamp).
func (c *Cache) set(ctx context.Context, key string, val []byte, ttl time.Duration, epoch stamp, inv uint64) error {
	err := c.call(ctx, "set", func(ctx context.Context) error { return c.b.Set(ctx, key, val, ttl) })
	c.fill(key, val, c.localExpiry(ttl), epoch, inv)
	return err
}

func (c *Cache) localExpiry(ttl time.Duration) time.Duration {
	if ttl > 0 && ttl < c.localTTL {
		return ttl
	}
	return c.localTTL
}

// Delete removes keys from the local tier and the backend and, with a Bus and
// Notifications, tells every instance on both to drop them from its local tier. It
// returns the backend's error; a failed publish or notification is logged and counted
// (another instance relying on that source alone then serves its copy for at most
// LocalTTL). It does not end with ctx: it follows a committed write, which every
// instance must learn of even when the caller has gone (a client that disconnected), and
// a notification must not leave before the backend delete it announces; each step is
// bounded by Options.Timeout.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	c.forgetLocal(keys)
	seq := c.delSeq.Add(1)
	var err error
	if c.inproc {
		c.fillMu.Lock()
		c.deleted.add(keys, false)
		err = c.b.Delete(ctx, keys...)
		c.fillMu.Unlock()
		// Announced after the backend's delete: an instance that drops its copy must not
		// reload the old value from the backend.
		c.announce(ctx, keys, seq)
		return err
	}
	c.logDeleted(keys, false)
	// The backend delete and the bus announcement go in a batch with the Deletes made at
	// the same moment (natural batching, as announcements through the notifications do):
	// every product create drops the category tree's key, which had been a Redis DEL and
	// an XADD per create; a burst of creates now shares them. Each caller returns once a
	// delete that began after it called has finished, so it is as done as its own.
	err = c.delSends.announce(ctx, keys, seq, func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), c.timeout)
	})
	if err != nil {
		c.retryLater(keys)
	}
	c.announceNotes(ctx, keys, seq)
	return err
}

// deleteAndAnnounce deletes keys from the backend, then announces them on the bus: the
// send of delSends.
func (c *Cache) deleteAndAnnounce(ctx context.Context, keys []string, seqs []uint64) error {
	err := c.call(ctx, "delete", func(ctx context.Context) error { return c.b.Delete(ctx, keys...) })
	c.announceBus(ctx, invalidation{Keys: keys, Origin: c.origin, Seqs: seqs})
	return err
}

// announce tells every instance, on the bus and through the notifications, to drop keys
// from its local tier: the deletion numbered seq.
func (c *Cache) announce(ctx context.Context, keys []string, seq uint64) {
	c.announceBus(ctx, invalidation{Keys: keys, Origin: c.origin, Seqs: repeated(seq, len(keys))})
	c.announceNotes(ctx, keys, seq)
}

// repeated returns n copies of seq: the numbers of n keys deleted together.
func repeated(seq uint64, n int) []uint64 {
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = seq
	}
	return seqs
}

// announceBus is announce's part on the bus.
func (c *Cache) announceBus(ctx context.Context, inv invalidation) {
	if c.bus != nil {
		_ = c.call(ctx, "invalidate", func(ctx context.Context) error {
			ev, err := plaza.NewEvent(invalidateType, "", inv, time.Now())
			if err != nil {
				return err
			}
			_, err = c.bus.Publish(ctx, InvalidateStream, ev)
			return err
		})
	}
}

// announceNotes is announce's part through the notifications.
func (c *Cache) announceNotes(ctx context.Context, keys []string, seq uint64) {
	if c.notes != nil {
		nctx, cancel := context.WithTimeout(ctx, c.timeout)
		_ = c.noteSends.announce(nctx, keys, seq, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), c.timeout)
		})
		cancel()
	}
}

// maxPending bounds the keys kept for a retry of their backend delete.
const maxPending = 100_000

// retryPending is how often Run retries the backend deletes that failed.
const retryPending = 250 * time.Millisecond

// retryLater keeps keys whose backend delete failed: a Redis that returns with its data
// (a partition rather than a restart) still holds their old values, which instances
// would read, and keep locally, once their local copies expire. Run deletes them again,
// and announces it, as soon as the backend answers.
func (c *Cache) retryLater(keys []string) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if c.pending == nil {
		c.pending = make(map[string]uint64)
	}
	c.pendSeq++
	for _, k := range keys {
		if _, ok := c.pending[k]; !ok && len(c.pending) >= maxPending {
			c.log.Warn("cache: too many failed deletes to retry; the rest may be served until their TTL", "kept", maxPending)
			return
		}
		c.pending[k] = c.pendSeq
	}
}

// runPending retries the failed backend deletes (retryLater) until ctx is done.
func (c *Cache) runPending(ctx context.Context) {
	t := time.NewTicker(retryPending)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.pendMu.Lock()
		snap := maps.Clone(c.pending)
		c.pendMu.Unlock()
		if len(snap) == 0 {
			continue
		}
		keys := slices.Collect(maps.Keys(snap))
		if err := c.call(ctx, "delete", func(ctx context.Context) error { return c.b.Delete(ctx, keys...) }); err != nil {
			continue
		}
		// Instances may have read the old values between the backend's return and now.
		c.forgetLocal(keys)
		c.announce(ctx, keys, c.delSeq.Add(1))
		c.pendMu.Lock()
		for k, seq := range snap {
			if c.pending[k] == seq {
				delete(c.pending, k)
			}
		}
		c.pendMu.Unlock()
	}
}

// notify sends keys, deleted by the deletions seqs number, through the notifications, in
// as many payloads as they need.
func (c *Cache) notify(ctx context.Context, keys []string, seqs []uint64) error {
	return c.notifyInvalidation(ctx, invalidation{Keys: keys, Origin: c.origin, Seqs: seqs})
}

// notifyInvalidation sends inv through the notifications, in as many payloads as it needs.
func (c *Cache) notifyInvalidation(ctx context.Context, inv invalidation) error {
	for _, p := range notifyPayloads(inv) {
		if err := c.notes.Notify(ctx, p); err != nil {
			if ctx.Err() == nil {
				c.sourceError(ctx, "notify", err)
			}
			return err
		}
	}
	return nil
}

// notifyPayloads encodes inv as invalidations of at most MaxNotifyPayload bytes each, its
// keys (and their numbers) split among them; a key too long for one is sent as forgetAll.
func notifyPayloads(inv invalidation) []string {
	keys, seqs := inv.Keys, inv.Seqs
	part := inv
	part.Keys, part.Seqs = []string{}, []uint64{0}
	empty, _ := json.Marshal(part)
	base := len(empty) // an upper bound: the seq 0 in it stands for the comma of the first
	var out []string
	start, size := 0, base
	flush := func(end int) {
		if end > start {
			part.Keys, part.Seqs = keys[start:end], seqs[start:end]
			b, _ := json.Marshal(part)
			out = append(out, string(b))
		}
		start, size = end, base
	}
	for i, k := range keys {
		b, _ := json.Marshal(k)
		n := len(b) + 1 + len(strconv.FormatUint(seqs[i], 10)) + 1 // each with a comma
		if base+n > MaxNotifyPayload {
			return []string{forgetAll}
		}
		if size+n > MaxNotifyPayload {
			flush(i)
		}
		size += n
	}
	flush(len(keys))
	return out
}

// Incr adds 1 to key's fixed-window counter (see Backend.Incr). Unlike the other methods
// it returns the backend's error: a rate limiter must decide itself whether to fail open.
func (c *Cache) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	var n int64
	err := c.call(ctx, "incr", func(ctx context.Context) (err error) {
		n, err = c.b.Incr(ctx, key, ttl)
		return err
	})
	return n, err
}

// GetOrLoad returns key's value, loading and caching it for ttl on a miss; hit tells
// whether it came from the cache. Concurrent misses of one key in this instance share one
// call of load. load runs without the caller's cancellation (it serves every waiter) but
// with its values; a caller whose ctx ends stops waiting. A load error (a panic becomes
// one) is returned to every waiter and not cached. The returned slice may be shared, as
// Get's: read it, never write to it.
func (c *Cache) GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func(context.Context) ([]byte, error)) (val []byte, hit bool, err error) {
	if val, ok := c.Get(ctx, key); ok {
		return val, true, nil
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		// Read before the source is: an invalidation after this may concern the value
		// loaded, which must then not reach the local tier.
		epoch, _ := c.localEpoch()
		inv := c.invals.Load()
		c.fillMu.Lock()
		del := c.deleted.seq
		c.fillMu.Unlock()
		// A flight that ended just before this one started has filled the cache: look
		// again instead of loading twice.
		if val, _, ok := c.get(fctx, key); ok {
			return loaded{val: val, hit: true}, nil
		}
		prom.Inc(c.m.loads)
		val, err := c.load(fctx, key, load)
		if err != nil {
			prom.Inc(c.m.loadErrors)
			return nil, err
		}
		c.fillBackend(fctx, key, val, ttl, epoch, inv, del)
		return loaded{val: val}, nil
	})
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, false, res.Err
		}
		l := res.Val.(loaded)
		return bytes.Clone(l.val), l.hit, nil
	}
}

type loaded struct {
	val []byte
	hit bool
}

// load calls fn, turning a panic into an error: in a flight it would otherwise crash the
// process, out of reach of any recovering middleware.
func (c *Cache) load(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) (val []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.ErrorContext(ctx, "cache: load panicked", "key", key, "panic", r, "stack", string(debug.Stack()))
			err = plaza.Wrap(plaza.EInternal, fmt.Errorf("cache: load of %q panicked: %v", key, r), "internal error")
		}
	}()
	return fn(ctx)
}

// Check pings the backend, for health checks: nil when it answers.
func (c *Cache) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.b.Ping(ctx)
}

// maxListenBackoff caps the wait between attempts to resubscribe to invalidations. A
// failed attempt is cheap (a Redis client's circuit breaker fails it at once), and the
// wait bounds how long after Redis (or the LISTEN connection) returns the local tier stays
// bypassed.
const maxListenBackoff = 400 * time.Millisecond

// Run applies invalidations to the local tier until ctx is done, then returns nil. They
// come from two sources, each when configured: the bus (Options.Bus) and the
// notifications (Options.Notifications). The local tier is used only while one source is
// live and caught up: the bus while Run is subscribed and, with a bus whose subscriptions
// report it (bus.Synced), its reader has read to the end of the stream; the notifications
// while their connection listens (they have no replay, so listening is caught up). While
// neither is, reads go to the backend and nothing is kept locally; an entry is served
// again only if a source live when it was filled has been live ever since. A source that
// ends (bus closed, fell behind, connection lost) is resumed with backoff. With a remote
// backend Run also retries the backend deletes that failed (see retryLater). Ready tells
// when it listens (at once without a source or a local tier).
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if !c.inproc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.runPending(ctx)
		}()
	}
	if c.local == nil || (c.bus == nil && c.notes == nil) {
		c.markReady()
		return nil
	}
	if c.bus != nil {
		c.waiting.Add(1)
	}
	if c.notes != nil {
		c.waiting.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.runNotifications(ctx)
		}()
	}
	if c.bus != nil {
		c.runBus(ctx)
	}
	return nil
}

// runBus applies invalidations from the bus until ctx is done or the bus is closed.
func (c *Cache) runBus(ctx context.Context) {
	backoff := time.Duration(0)
	for first := true; ; first = false {
		if !first && !sleep(ctx, &backoff) {
			return
		}
		sub, err := c.bus.Subscribe(ctx, InvalidateStream, "")
		if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
			if sub != nil {
				sub.Close()
			}
			return
		}
		if err != nil {
			c.backendError(ctx, "subscribe", err)
			continue
		}
		if !first {
			// Invalidations may have been missed while unsubscribed: nothing kept from
			// before is served on the bus's word again.
			c.busEpoch.Add(1)
			c.dropUnowned()
		}
		c.sub.Store(&sub)
		c.listening(&c.busOnce)
		for ev := range sub.Events() {
			backoff = 0
			c.applyInvalidation(ev)
		}
		c.sub.Store(nil)
		sub.Close()
		if ctx.Err() != nil {
			return
		}
		if err := sub.Err(); err != nil {
			c.backendError(ctx, "subscribe", err)
		}
	}
}

// runNotifications applies invalidations from the notifications until ctx is done. Each
// return to listening is a new epoch: what was sent while nobody listened is lost.
func (c *Cache) runNotifications(ctx context.Context) {
	backoff := time.Duration(0)
	for first := true; ; first = false {
		if !first && !sleep(ctx, &backoff) {
			return
		}
		err := c.notes.Listen(ctx, func() {
			c.notesEp.Add(1)
			c.notesUp.Store(true)
			backoff = 0
			c.listening(&c.notesOnce)
		}, c.applyNotification)
		c.notesUp.Store(false)
		if ctx.Err() != nil {
			return
		}
		c.dropUnowned()
		if err != nil {
			c.sourceError(ctx, "listen", err)
		}
	}
}

// sleep waits before a source's next attempt, doubling *backoff up to maxListenBackoff,
// with jitter. It reports false when ctx ended meanwhile.
func sleep(ctx context.Context, backoff *time.Duration) bool {
	*backoff = min(max(2**backoff, 100*time.Millisecond), maxListenBackoff)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*backoff/2 + rand.N(*backoff/2+1)):
		return true
	}
}

// dropUnowned gives back the local tier's memory when no source vouches for its entries
// any more; while one does, they stay (and are still served).
func (c *Cache) dropUnowned() {
	if _, ok := c.localEpoch(); !ok {
		c.local.c.DeleteAll()
	}
}

// Ready is closed once Run has listened on each of its invalidation sources (at once when
// it has none to listen to): from then on a Delete on any instance reaches this one's
// local tier. Waiting on it replaces guessing how long a subscription takes to start.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

func (c *Cache) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

// listening counts a source (once) as having listened: when every source has, Run is
// ready.
func (c *Cache) listening(once *sync.Once) {
	once.Do(func() {
		if c.waiting.Add(-1) == 0 {
			c.markReady()
		}
	})
}

func (c *Cache) applyNotification(payload string) {
	if payload == forgetAll {
		again := c.received(nil, true)
		c.invals.Add(1)
		c.local.c.DeleteAll()
		c.deleteAgain(again)
		prom.Inc(c.m.invalidations)
		return
	}
	var inv invalidation
	var err error
	if strings.HasPrefix(payload, "[") {
		err = json.Unmarshal([]byte(payload), &inv.Keys) // an older version's: the keys alone
	} else {
		err = json.Unmarshal([]byte(payload), &inv)
	}
	if err != nil {
		// Not one of ours (another version sharing the database): drop everything rather
		// than keep what it may have meant to invalidate.
		c.log.Error("cache: undecodable invalidation notification; local tier dropped", "err", err)
		again := c.received(nil, true)
		c.invals.Add(1)
		c.local.c.DeleteAll()
		c.deleteAgain(again)
		return
	}
	c.apply(inv)
}

func (c *Cache) applyInvalidation(ev plaza.Event) {
	if ev.Type != invalidateType {
		return
	}
	var inv invalidation
	if err := json.Unmarshal(ev.Data, &inv); err != nil {
		c.log.Error("cache: undecodable invalidation", "id", ev.ID, "err", err)
		return
	}
	c.apply(inv)
}

// apply drops the keys of inv that this instance has not yet applied from the local tier
// and, when another instance deleted them, from this one's recent fills (see received).
// Its own announcement still drops the local copies: one may have been read from the
// backend between its Delete's start and the backend's delete. The recent fills are
// taken before the local copies are dropped, and deleted again only if unchanged, so a
// read that misses meanwhile and fills the backend afresh keeps what it stored.
func (c *Cache) apply(inv invalidation) {
	keys := c.firstArrivals(inv)
	if len(keys) == 0 {
		return
	}
	var again recentTaken
	if inv.Origin != c.origin && !inv.Again { // this Cache's own Delete logged its keys already
		again = c.received(keys, false)
	}
	c.forgetLocal(keys)
	c.deleteAgain(again)
	prom.Inc(c.m.invalidations)
}

// firstArrivals returns the keys of inv whose deletion is not yet applied here (all of
// them when inv carries no numbers), and remembers them as applied.
func (c *Cache) firstArrivals(inv invalidation) []string {
	if inv.Origin == "" || len(inv.Seqs) != len(inv.Keys) {
		return inv.Keys
	}
	now := time.Now()
	keys := inv.Keys[:0:0]
	c.appliedMu.Lock()
	defer c.appliedMu.Unlock()
	for i, k := range inv.Keys {
		if c.applied.first(appliedKey{inv.Origin, k}, inv.Seqs[i], now) {
			keys = append(keys, k)
		}
	}
	return keys
}

// fillBackend stores what a load returned, unless key was deleted (here, or by an
// invalidation received) after the log's number was del, before the load (see
// Cache.deleted).
func (c *Cache) fillBackend(ctx context.Context, key string, val []byte, ttl time.Duration, epoch stamp, inv, del uint64) {
	if c.inproc {
		c.fillMu.Lock()
		defer c.fillMu.Unlock()
		if !c.deleted.since(del, key) {
			_ = c.set(ctx, key, val, ttl, epoch, inv)
		}
		return
	}
	now := time.Now()
	c.fillMu.Lock()
	if c.deleted.since(del, key) {
		c.fillMu.Unlock()
		return
	}
	if !c.recent.add(key, DigestOf(val), now) {
		c.fillMu.Unlock()
		return // too many fills to watch: the next read loads again
	}
	c.fillMu.Unlock()
	_ = c.set(ctx, key, val, ttl, epoch, inv)
	if c.deletedSince(del, key) {
		// A Delete or an announcement came while storing: what was stored may be what
		// it removed.
		c.deleteAgain(recentTaken{keys: []string{key}, digests: []Digest{DigestOf(val)}})
	}
}

// recentTaken is fills of this instance's taken from recentFills, with their digests.
type recentTaken struct {
	keys    []string
	digests []Digest
}

// received applies an invalidation from another instance (or this one's, come back) to
// the fills of a remote backend: it logs the keys as deleted, so that loads under way do
// not store what they read, and takes the keys this instance filled in the last
// fillMemory, which may have been stored after the delete the invalidation follows, for
// deleteAgain. all stands for every key.
func (c *Cache) received(keys []string, all bool) recentTaken {
	if c.inproc {
		// An in-process backend is this process's alone: its Deletes all went through
		// Delete, which logged them.
		return recentTaken{}
	}
	c.logDeleted(keys, all)
	now := time.Now()
	var t recentTaken
	c.fillMu.Lock()
	defer c.fillMu.Unlock()
	if all {
		t.keys, t.digests = c.recent.takeAll()
		return t
	}
	for _, k := range keys {
		for _, d := range c.recent.take(k, now) {
			t.keys, t.digests = append(t.keys, k), append(t.digests, d)
		}
	}
	return t
}

// deleteAgain deletes the fills in t from the backend where they are still what this
// instance stored (a fill made since is fresh) and, if it deleted any, announces it
// marked Again: another instance may have read the value in the meantime and kept it in
// its local tier. It runs on its own, so that a slow backend does not hold up the
// invalidations behind it.
func (c *Cache) deleteAgain(t recentTaken) {
	if len(t.keys) == 0 {
		return
	}
	c.again.Add(1)
	go func() {
		defer c.again.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		var deleted []string
		if c.call(ctx, "delete", func(ctx context.Context) (err error) {
			deleted, err = c.b.DeleteUnchanged(ctx, t.keys, t.digests)
			return err
		}) != nil || len(deleted) == 0 {
			return
		}
		c.forgetLocal(deleted)
		inv := invalidation{Keys: deleted, Origin: c.origin, Seqs: repeated(c.delSeq.Add(1), len(deleted)), Again: true}
		c.announceBus(ctx, inv)
		if c.notes != nil {
			_ = c.notifyInvalidation(ctx, inv)
		}
	}()
}

// forgetLocal drops keys from the local tier and makes fills that read before this
// moment drop their value.
func (c *Cache) forgetLocal(keys []string) {
	if c.local == nil {
		return
	}
	c.invals.Add(1)
	for _, k := range keys {
		c.local.c.Delete(k)
	}
}

// Close stops the local tier and closes the backend (a Redis backend leaves its client
// to its owner).
func (c *Cache) Close() error {
	c.again.Wait()
	if c.local != nil {
		c.local.close()
	}
	return c.b.Close()
}

// backendError counts err and logs it, at most once a second: with Redis down every
// request would otherwise log the same thing.
func (c *Cache) backendError(ctx context.Context, op string, err error) {
	if plaza.ErrorCodeOf(err) == plaza.EUnavailable {
		// The backend failing may mean the bus fails too (one Redis), with invalidations
		// lost on the way: disown what the bus vouches for rather than wait for the
		// stream's reader to notice. The notifications do not depend on the backend.
		c.busEpoch.Add(1)
	}
	c.sourceError(ctx, op, err)
}

// sourceError counts and logs a failure that does not concern the backend.
func (c *Cache) sourceError(ctx context.Context, op string, err error) {
	c.m.error(op)
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last < int64(time.Second) || !c.lastLog.CompareAndSwap(last, now) {
		return
	}
	c.log.WarnContext(ctx, fmt.Sprintf("cache: %s failed", op), "err", err)
}

type metrics struct {
	// The hit counter of each tier, looked up once: WithLabelValues on every hit hashes
	// the label and takes the vector's lock, about 1.5% of a cached read's CPU.
	localHits, backendHits prometheus.Counter
	misses                 prometheus.Counter
	errors                 *prometheus.CounterVec
	loads                  prometheus.Counter
	loadErrors             prometheus.Counter
	invalidations          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	if reg == nil {
		return metrics{}
	}
	hits := prom.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plaza_cache_hits_total", Help: "Cache hits by tier (local, backend).",
	}, []string{"tier"}))
	return metrics{
		localHits:   hits.WithLabelValues("local"),
		backendHits: hits.WithLabelValues("backend"),
		misses: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_cache_misses_total", Help: "Cache misses, backend errors included.",
		})),
		errors: prom.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_cache_errors_total", Help: "Failed cache backend and bus calls by operation.",
		}, []string{"op"})),
		loads: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_cache_loads_total", Help: "Loads from the source of truth after a miss (GetOrLoad).",
		})),
		loadErrors: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_cache_load_errors_total", Help: "Loads that failed (not cached).",
		})),
		invalidations: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_cache_invalidations_total", Help: "Invalidations received from the bus and the notifications.",
		})),
	}
}

func (m metrics) hit(tier string) {
	if tier == "local" {
		prom.Inc(m.localHits)
	} else {
		prom.Inc(m.backendHits)
	}
}

func (m metrics) error(op string) {
	if m.errors != nil {
		m.errors.WithLabelValues(op).Inc()
	}
}
