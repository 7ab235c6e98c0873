package bus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"plaza/internal/plaza"
	"plaza/internal/prom"
	"plaza/internal/redisx"
)

// RedisOptions configure NewRedis. The zero value works.
type RedisOptions struct {
	// Prefix is put before every stream name to form its Redis key (default "plaza:bus:").
	Prefix string
	// Retain is how many recent events each stream keeps for replay: XADD MAXLEN ~ Retain,
	// so Redis may keep somewhat more (default DefaultRetain).
	Retain int
	// BufferSize bounds each subscription's backlog of live events (default 256).
	BufferSize int
	// Block is how long one XREAD waits for new events. It bounds how long a stream's
	// reader lingers after its last subscriber left and so how long Close waits (default 1s).
	Block time.Duration
	// Logger receives connection trouble of stream readers (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, receives the bus metrics.
	Registerer prometheus.Registerer
}

// NewRedis returns a bus on Redis Streams: every instance connected to the same Redis
// sees every event. The caller owns client: Close ends the subscriptions, not the client.
//
// Each stream is read by one goroutine per instance, whatever its number of subscribers:
// one blocking XREAD (one pooled connection) per stream with subscribers, fanned out in
// memory. Subscriber count never becomes Redis connection count.
func NewRedis(client redis.UniversalClient, opts RedisOptions) Bus {
	if opts.Prefix == "" {
		opts.Prefix = "plaza:bus:"
	}
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &redisBus{
		client: client, opts: opts, m: newMetrics(opts.Registerer, "redis"),
		ctx: ctx, cancel: cancel, streams: map[string]*redisStream{},
	}
}

type redisBus struct {
	client redis.UniversalClient
	opts   RedisOptions
	m      metrics

	ctx    context.Context // ends every reader when the bus closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // readers

	mu      sync.Mutex // guards streams and closed; taken before a stream's mu, never after
	streams map[string]*redisStream
	closed  bool
}

// redisStream is one stream's reader and its local subscribers. Its mutex serializes the
// reader's deliveries with subscribing and ending subscriptions, so a send on a
// subscription's channel and its close never race, and a new subscriber is attached at a
// known position of the reader.
type redisStream struct {
	name, key string
	cancel    context.CancelFunc // stops the reader

	// synced is false from a failed read until a read reaches the stream's end again;
	// syncs counts the returns to synced (see Synced).
	synced atomic.Bool
	syncs  atomic.Uint64

	mu   sync.Mutex
	seen seen     // keys the reader handed out lately: a repeat is skipped
	last position // the newest entry the reader has handed out
	subs map[*redisSub]struct{}
	done bool // the reader stopped; a subscriber needs a new stream
}

// eventField is the one field of a stream entry; it holds the event as JSON, minus its
// ID, which is the entry's ID.
const eventField = "event"

func (b *redisBus) Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error) {
	if b.isClosed() {
		return plaza.Event{}, ErrClosed
	}
	ev.ID = ""
	payload, err := json.Marshal(ev)
	if err != nil {
		return plaza.Event{}, plaza.Wrap(plaza.EInternal, err, "cannot encode event")
	}
	id, err := b.client.XAdd(ctx, &redis.XAddArgs{
		Stream: b.opts.Prefix + stream,
		MaxLen: int64(b.opts.Retain),
		Approx: true,
		Values: []any{eventField, payload},
	}).Result()
	if err != nil {
		return plaza.Event{}, redisx.Err(err, "event bus")
	}
	prom.Inc(b.m.published)
	ev.ID = id
	return ev, nil
}

// PublishMany publishes evs in order, as Publish each, in one pipeline: one round trip for
// them all instead of one each (the outbox relay publishes its batches this way). It
// returns how many were published before the first that failed, and that one's error;
// ones after it may have been published too (a caller publishing at least once sends them
// again, and readers drop the repeated keys).
func (b *redisBus) PublishMany(ctx context.Context, evs []plaza.Outgoing) (int, error) {
	if b.isClosed() {
		return 0, ErrClosed
	}
	payloads := make([][]byte, 0, len(evs))
	var encErr error
	for _, o := range evs {
		ev := o.Event
		ev.ID = ""
		payload, err := json.Marshal(ev)
		if err != nil {
			encErr = plaza.Wrap(plaza.EInternal, err, "cannot encode event")
			break
		}
		payloads = append(payloads, payload)
	}
	cmds := make([]*redis.StringCmd, len(payloads))
	if len(payloads) > 0 {
		// The pipeline's own error is the first command's that failed; each is read below.
		_, _ = b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, payload := range payloads {
				cmds[i] = p.XAdd(ctx, &redis.XAddArgs{
					Stream: b.opts.Prefix + evs[i].Stream,
					MaxLen: int64(b.opts.Retain),
					Approx: true,
					Values: []any{eventField, payload},
				})
			}
			return nil
		})
	}
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			b.countPublished(i)
			return i, redisx.Err(err, "event bus")
		}
	}
	b.countPublished(len(cmds))
	return len(cmds), encErr
}

func (b *redisBus) countPublished(n int) {
	if b.m.published != nil && n > 0 {
		b.m.published.Add(float64(n))
	}
}

func (b *redisBus) Subscribe(ctx context.Context, stream string, after string) (Subscription, error) {
	var from position
	if after != "" {
		p, err := parsePosition(after)
		if err != nil {
			return nil, err
		}
		from = p
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	key := b.opts.Prefix + stream
	var replay []plaza.Event
	if after == "" {
		// "Only new events" is resolved to the stream's current last ID now, so events
		// published while the reader starts (or reconnects) are not missed, as they
		// would be with "$".
		msgs, err := b.client.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil {
			return nil, redisx.Err(err, "event bus")
		}
		if len(msgs) == 1 {
			from, _ = parsePosition(msgs[0].ID)
		}
	} else {
		if err := b.checkRetained(ctx, key, from); err != nil {
			return nil, err
		}
		// The retained backlog is read here, like the memory bus does, so it gets room of
		// its own in the channel; whatever Retain's "~" left beyond it is caught up below.
		var err error
		if replay, from, err = b.rangeAfter(ctx, stream, from, "+", int64(b.opts.Retain)); err != nil {
			return nil, err
		}
	}

	for {
		s, err := b.stream(stream, key, from)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.done {
			// The reader stopped after its last subscriber left, between b.stream and
			// here: ask for a fresh one.
			s.mu.Unlock()
			continue
		}
		// The reader may be ahead of from: what it handed out meanwhile is read here, under
		// the lock, so it precedes every live event and nothing falls in between.
		if from.less(s.last) {
			gap, at, err := b.rangeAfter(ctx, stream, from, s.last.String(), -1)
			if err != nil {
				s.mu.Unlock()
				b.release(s)
				return nil, err
			}
			replay, from = append(replay, gap...), at
		}
		sub := &redisSub{stream: s, bus: b, pos: from, ch: make(chan plaza.Event, len(replay)+b.opts.BufferSize)}
		for _, ev := range replay {
			sub.ch <- ev
			prom.Inc(b.m.delivered)
		}
		s.subs[sub] = struct{}{}
		sub.stop = context.AfterFunc(ctx, sub.Close)
		s.mu.Unlock()
		return sub, nil
	}
}

// checkRetained fails with ErrTrimmed when events after p were trimmed from the stream.
// Redis does not say which entry preceded the oldest one kept, so a position just before
// it counts as trimmed too: the subscriber starts over rather than risk a silent gap.
func (b *redisBus) checkRetained(ctx context.Context, key string, p position) error {
	if p == (position{}) {
		return nil // "0-0": whatever is retained
	}
	info, err := b.client.XInfoStream(ctx, key).Result()
	if err != nil {
		if isNoSuchKey(err) {
			return nil
		}
		return redisx.Err(err, "event bus")
	}
	first, err := parsePosition(info.FirstEntry.ID)
	if err != nil || info.EntriesAdded <= info.Length {
		return nil // empty, or nothing was ever trimmed
	}
	if p.less(first) {
		return ErrTrimmed
	}
	return nil
}

// isNoSuchKey reports the reply XINFO STREAM gives for a stream that does not exist yet.
func isNoSuchKey(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && re.Error() == "ERR no such key"
}

// rangeAfter reads the entries after p up to end (inclusive), at most count (-1: all),
// and returns them with the position of the last entry read (p when none).
func (b *redisBus) rangeAfter(ctx context.Context, stream string, p position, end string, count int64) ([]plaza.Event, position, error) {
	key := b.opts.Prefix + stream
	var msgs []redis.XMessage
	var err error
	if count < 0 {
		msgs, err = b.client.XRange(ctx, key, "("+p.String(), end).Result()
	} else {
		msgs, err = b.client.XRangeN(ctx, key, "("+p.String(), end, count).Result()
	}
	if err != nil {
		return nil, p, redisx.Err(err, "event bus")
	}
	var out []plaza.Event
	var keys seen // a repeated publish within what is replayed is replayed once
	for _, msg := range msgs {
		if ev, ok := b.decode(stream, msg); ok && !keys.add(ev.Key) {
			out = append(out, ev)
		}
	}
	if len(msgs) > 0 {
		p, _ = parsePosition(msgs[len(msgs)-1].ID)
	}
	return out, p, nil
}

// stream returns the stream's shared reader, starting one from position from when the
// stream has none on this instance.
func (b *redisBus) stream(name, key string, from position) (*redisStream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if s := b.streams[name]; s != nil {
		return s, nil
	}
	rctx, cancel := context.WithCancel(b.ctx)
	s := &redisStream{name: name, key: key, cancel: cancel, last: from, subs: map[*redisSub]struct{}{}}
	// A reader starts where its first subscriber resolved the stream's end to be.
	s.synced.Store(true)
	b.streams[name] = s
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.read(rctx, s)
	}()
	return s, nil
}

// release stops s's reader when it has no subscriber left.
func (b *redisBus) release(s *redisStream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) > 0 || s.done {
		return
	}
	s.done = true
	s.cancel()
	if b.streams[s.name] == s {
		delete(b.streams, s.name)
	}
}

// maxReadBackoff caps the wait between attempts to read a stream that failed. It is short
// because retrying is cheap (with the client's circuit breaker open an attempt fails
// without touching the network) and it bounds how late events flow again once Redis is
// back: with the breaker's probe, well within a second.
const maxReadBackoff = 400 * time.Millisecond

// read follows s until ctx ends, handing every entry to every local subscriber. On errors
// it retries with backoff from the last entry it handed out, so nothing still retained is
// lost.
func (b *redisBus) read(ctx context.Context, s *redisStream) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		s.mu.Lock()
		last := s.last.String()
		s.mu.Unlock()
		block := b.opts.Block
		if !s.synced.Load() {
			// Back after a failure: ask without blocking, so that being caught up is known
			// at once rather than after a Block of silence.
			block = -1
		}
		res, err := b.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.key, last},
			Count:   int64(b.opts.BufferSize),
			Block:   block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			backoff = 0
			s.caughtUp()
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.synced.Store(false)
			backoff = min(max(2*backoff, 50*time.Millisecond), maxReadBackoff)
			wait := backoff/2 + rand.N(backoff/2+1)
			b.opts.Logger.Warn("bus: reading stream failed, retrying", "stream", s.name, "after", last, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		backoff = 0
		n := 0
		for _, xs := range res {
			n += len(xs.Messages)
			for _, msg := range xs.Messages {
				p, err := parsePosition(msg.ID)
				if err != nil {
					continue
				}
				ev, ok := b.decode(s.name, msg)
				s.mu.Lock()
				if s.last.less(p) {
					s.last = p
				}
				if ok && !s.seen.add(ev.Key) {
					b.fanOut(s, p, ev)
				}
				s.mu.Unlock()
			}
		}
		if n < b.opts.BufferSize {
			s.caughtUp()
		}
	}
}

// caughtUp records that a read reached the end of the stream.
func (s *redisStream) caughtUp() {
	if !s.synced.Load() {
		s.syncs.Add(1)
		s.synced.Store(true)
	}
}

// fanOut hands ev (at position p) to every subscriber that has not had it, without
// waiting: a full buffer ends that subscription. s.mu must be held.
func (b *redisBus) fanOut(s *redisStream, p position, ev plaza.Event) {
	for sub := range s.subs {
		if !sub.pos.less(p) {
			continue // replayed already when it subscribed
		}
		sub.pos = p
		select {
		case sub.ch <- ev:
			prom.Inc(b.m.delivered)
		default:
			prom.Inc(b.m.slow)
			s.endLocked(sub, ErrSlowConsumer)
		}
	}
}

func (b *redisBus) decode(stream string, msg redis.XMessage) (plaza.Event, bool) {
	var ev plaza.Event
	raw, _ := msg.Values[eventField].(string)
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		b.opts.Logger.Error("bus: skipping undecodable stream entry", "stream", stream, "id", msg.ID, "err", err)
		return plaza.Event{}, false
	}
	ev.ID = msg.ID
	return ev, true
}

func (b *redisBus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return redisx.Err(err, "event bus")
	}
	return nil
}

func (b *redisBus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close ends every subscription and waits for the readers, at most about Block.
func (b *redisBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	streams := b.streams
	b.streams = nil
	b.mu.Unlock()
	for _, s := range streams {
		s.mu.Lock()
		s.done = true
		for sub := range s.subs {
			s.endLocked(sub, nil)
		}
		s.mu.Unlock()
	}
	b.cancel()
	b.wg.Wait()
	return nil
}

// redisSub's channel is sent to and closed only under its stream's mu.
type redisSub struct {
	stream *redisStream
	bus    *redisBus
	ch     chan plaza.Event
	pos    position    // the newest event it has been given; guarded by stream.mu
	stop   func() bool // stops the watcher of the subscriber's ctx; set under stream.mu

	mu  sync.Mutex
	err error
}

// endLocked ends sub with err; s.mu must be held. The reader is stopped afterwards,
// outside the lock, when sub was the last subscriber.
func (s *redisStream) endLocked(sub *redisSub, err error) {
	if _, ok := s.subs[sub]; !ok {
		return
	}
	delete(s.subs, sub)
	sub.mu.Lock()
	sub.err = err
	sub.mu.Unlock()
	close(sub.ch)
	if sub.stop != nil {
		sub.stop()
	}
	if len(s.subs) == 0 && !s.done {
		go sub.bus.release(s)
	}
}

func (s *redisSub) Events() <-chan plaza.Event { return s.ch }

// Synced reports whether the stream's shared reader is caught up (see bus.Synced).
func (s *redisSub) Synced() (bool, uint64) {
	return s.stream.synced.Load(), s.stream.syncs.Load()
}

func (s *redisSub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *redisSub) Close() {
	s.stream.mu.Lock()
	defer s.stream.mu.Unlock()
	s.stream.endLocked(s, nil)
}
